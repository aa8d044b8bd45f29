"""The domain's exceptions: what a service raises when it can't give the answer asked for.

Views never build an error response for these themselves: views/errors.py maps each kind
to its HTTP answer in one place (status, reason, the Basic challenge where one is due).
"""

from __future__ import annotations


class Refused(Exception):
    """The request is refused for a reason the client can act on: a 4xx (or a 503) whose
    status line and body carry the message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> Refused:
    return Refused(400, message)


class NotFound(Exception):
    """No such project, version or file here."""
