"""The one error type for refusals an agent reads."""

from __future__ import annotations


class Refusal(Exception):
    """A command that cannot be done now, in words an agent can read (shown on the desk as is),
    with a short code for tests and logs. ``level`` "info" is a nudge (pick a campaign first),
    not a failure."""

    def __init__(self, message: str, code: str = "", level: str = "error"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.level = level
