"""The review queue as CSV: object, frame, reason, score, detail; most suspicious first."""

import csv
from pathlib import Path

from .atomic import atomic_output

REVIEW_COLUMNS = ("object", "frame", "reason", "score", "detail")


def write_review_csv(path: str | Path, items, overwrite: bool = False) -> Path:
    """Write review items (`engine.review.ReviewItem`) in the order given."""
    with atomic_output(path, overwrite) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(REVIEW_COLUMNS)
        for item in items:
            writer.writerow(
                (item.obj_id, item.frame, item.reason, f"{item.score:.4f}", item.detail)
            )
    return Path(path)
