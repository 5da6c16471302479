"""A segmentation session without Qt: objects, prompts and the log of every edit over one
tracker, saved to and replayed from the session file (the prompts JSON, version 2)."""

from .core import Session
from .files import read_session, replay_prompts, session_document, write_session
from .log import Operation, parse_log
from .objects import SessionObject

__all__ = [
    "Operation",
    "Session",
    "SessionObject",
    "parse_log",
    "read_session",
    "replay_prompts",
    "session_document",
    "write_session",
]
