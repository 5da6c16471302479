"""The batch's summary: one row per stack (done, skipped, failed or pending), kept in
`summary.csv` in the output folder and rewritten atomically as stacks finish."""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import atomic_output

SUMMARY_NAME = "summary.csv"
COLUMNS = ("stack", "status", "frames", "objects", "seconds", "error")
STATUSES = ("done", "skipped", "failed", "pending")


@dataclass(frozen=True)
class StackResult:
    """What became of one stack: `status` is "done" (segmented now), "skipped" (complete
    outputs from an earlier run), "failed" (`error` says why, in one line) or "pending"."""

    stack: str
    status: str
    frames: int | None = None
    objects: int | None = None
    seconds: float = 0.0
    error: str = ""

    def row(self) -> dict[str, str]:
        """The summary.csv row: empty cells where a number is unknown."""
        return {
            "stack": self.stack,
            "status": self.status,
            "frames": "" if self.frames is None else str(self.frames),
            "objects": "" if self.objects is None else str(self.objects),
            "seconds": f"{self.seconds:.2f}",
            "error": self.error,
        }


def one_line(message: object) -> str:
    """A message with its whitespace (newlines included) collapsed, for one CSV cell."""
    return " ".join(str(message).split())


def write_summary(folder: Path, results: list[StackResult]) -> Path:
    """Write `folder/summary.csv` whole, replacing the previous one atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.row() for result in results)
    path = folder / SUMMARY_NAME
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(text.getvalue(), encoding="utf-8")
    return path


def read_summary(path: str | Path) -> list[StackResult]:
    """The rows of a summary.csv written by `write_summary`."""
    with open(path, newline="", encoding="utf-8") as file:
        return [
            StackResult(
                stack=row["stack"],
                status=row["status"],
                frames=int(row["frames"]) if row["frames"] else None,
                objects=int(row["objects"]) if row["objects"] else None,
                seconds=float(row["seconds"] or 0.0),
                error=row["error"],
            )
            for row in csv.DictReader(file)
        ]
