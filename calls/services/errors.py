"""The one error type for refusals an agent reads."""

from __future__ import annotations


class Refusal(Exception):
    """A command that cannot be done now, in words an agent can read (shown on the desk as is),
    with a short code for tests and logs."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
