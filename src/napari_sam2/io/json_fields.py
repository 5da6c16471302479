"""Strict reading of JSON documents (prompts and session files): decoding that refuses
repeated keys, NaN and deep nesting, and field checks whose errors name the file and the field."""

import json
import math
from typing import Any, NoReturn

from ..errors import SAM2Error


class JsonFields:
    """Raises SAM2Errors that name the file and the field, e.g.
    "prompts.json: objects[1].frames['3'].points[0]: expected [x, y, label]"."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        raise SAM2Error(prefix + message)

    def number(self, value, where: str) -> float:
        try:
            # a huge JSON integer overflows float(): as absurd as inf
            number = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not isinstance(value, int | float) or not math.isfinite(number):
            self.fail(where, f"expected a finite number, got {shown(value)}")
        return number

    def integer(self, value, where: str, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"expected an integer >= {minimum}, got {shown(value)}")
        if maximum is not None and value > maximum:
            self.fail(where, f"{shown(value)} is larger than the largest allowed, {maximum}")
        return value

    def frame_index(self, key, where: str) -> int:
        """A frame key: ASCII digits without leading zeros ("٣" or "03" would alias "3")."""
        if not (
            isinstance(key, str)
            and key.isascii()
            and key.isdigit()
            and (key == "0" or not key.startswith("0"))
            and len(key) <= 18
        ):
            self.fail(where, "frame keys are frame indices: '0', '1', ... (ASCII digits)")
        return int(key)

    def pair(self, value, where: str, what: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(where, f"expected {what}")
        low, high = (self.number(v, f"{where}[{i}]") for i, v in enumerate(value))
        return low, high

    def keys(self, value, where: str, allowed: tuple[str, ...], what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected {what}, got {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            self.fail(where, f"unknown field {unknown[0]!r}; known: {', '.join(allowed)}")
        return value


def shown(value: Any) -> str:
    """A JSON value for a message, cut short (a 4,000-digit number is not worth quoting)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: a repeated key (the later would silently win)
    is an error."""
    document = {}
    for key, value in pairs:
        if key in document:
            raise _RepeatedKey(key)
        document[key] = value
    return document


class _RepeatedKey(ValueError):
    pass


def loads_document(text: str, source: str) -> Any:
    """Decode a JSON document strictly: no repeated keys, no deep nesting, no NaN; every
    failure a SAM2Error naming `source`."""

    def constant(name: str):
        raise SAM2Error(f"{source}: {name} is not a number JSON allows")

    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=constant)
    except _RepeatedKey as exc:
        raise SAM2Error(f"{source}: the key {str(exc)!r} appears twice in one object") from exc
    except json.JSONDecodeError as exc:
        raise SAM2Error(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise SAM2Error(f"{source}: JSON nested too deeply to be a prompts file") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SAM2Error(f"{source}: not a usable JSON document ({exc})") from exc
