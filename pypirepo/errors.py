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


class LoginRequired(Exception):
    """An anonymous caller may not see this: a 401 with the Basic challenge (pip and uv
    send credentials only after one), whether it exists or not."""


class Hidden(NotFound):
    """A project the caller may not read: answered exactly as one that does not exist
    (a user), or with a 401 (nobody logged in). A group never falls through to its next
    member for it: that would serve a look-alike of a private project."""

    def __init__(self, name: str, anonymous: bool = False):
        super().__init__(name)
        self.anonymous = anonymous


class FallbackDenied(Exception):
    """The upstream would have to be asked, and this caller may not make us: anonymous
    callers are asked to log in (401), users see the name as unknown (404)."""


class UpstreamFailed(Exception):
    """The upstream could not be asked and nothing is held: a 502 naming the problem."""


class LoopDetected(UpstreamFailed):
    """The request was made by this server's own upstream client: the upstream (or a
    redirect of its) leads back here. Answered at once (508), never fetched again."""


class RedirectUpstream(Exception):
    """The client is sent to the upstream (a proxy in redirect mode)."""

    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


class StoredMeanwhile(Exception):
    """The file was stored by a fetch that finished just now: serve it as a local file."""
