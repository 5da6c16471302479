"""The one exception type whose message is meant for the user."""


class SAM2Error(Exception):
    """Something the user can fix: the message says what was wrong and what to do.

    The CLI and the widget show the message alone, never a traceback.
    """
