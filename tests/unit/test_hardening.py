"""The server's additions to waitress that can be seen without a socket: the log filter,
the check before a body, the open-files limit (the rest: tests/e2e/test_limits.py)."""

import logging
import subprocess
import sys
import time

import pytest

from pypirepo.security import ANONYMOUS_BODY_LIMIT, BodyGate
from pypirepo.hardening import RepeatFilter


def record(msg, *args):
    return logging.LogRecord("waitress.queue", logging.WARNING, __file__, 1, msg, args, None)


def test_repeat_filter_lets_one_through_per_interval_and_counts_the_rest():
    f = RepeatFilter(0.2)
    passed = [r for r in (record("Task queue depth is %d", n) for n in range(100)) if f.filter(r)]
    assert [r.getMessage() for r in passed] == ["Task queue depth is 0"]
    # Another message is counted apart.
    assert f.filter(record("total open connections reached the connection limit"))
    time.sleep(0.25)
    later = record("Task queue depth is %d", 7)
    assert f.filter(later)
    assert later.getMessage() == \
        "Task queue depth is 7 [and 99 more like it since the last one shown]"
    assert not f.filter(record("Task queue depth is %d", 8))


class Access:
    """What the gate asks of the access service: may anonymous requests write anywhere?"""

    def __init__(self, everyone_may):
        self.everyone_may = everyone_may

    def anonymous_may_write(self):
        return bool(self.everyone_may & {"upload", "delete"})


@pytest.fixture
def gate():
    return BodyGate(Access({"read"}), max_upload_size=10_000_000, realm="r")


def test_gate_refuses_oversize_bodies_for_everyone(gate):
    limit = 10_000_000 + 1024 * 1024
    assert gate("POST", {"AUTHORIZATION": "Basic x"}, limit) is None
    status, message, _ = gate("POST", {"AUTHORIZATION": "Basic x"}, limit + 1)
    assert (status, message) == (413, "File too large. Limit is 10000000 bytes.")
    assert gate("GET", {}, limit + 1)[0] == 413


def test_gate_refuses_anonymous_writes_it_can_tell_from_the_headers(gate):
    big = ANONYMOUS_BODY_LIMIT + 1
    status, _message, headers = gate("POST", {}, big)
    assert status == 401 and headers == (("WWW-Authenticate", 'Basic realm="r"'),)
    assert gate("PUT", {}, None)[0] == 401  # chunked: size unknown
    assert gate("POST", {"EXPECT": "100-Continue"}, 10)[0] == 401
    # Small anonymous bodies reach the views (which say 401 in the client's format);
    # reads, credentials and (later) session cookies are not judged here.
    assert gate("POST", {}, ANONYMOUS_BODY_LIMIT) is None
    assert gate("GET", {}, big) is None
    assert gate("POST", {"AUTHORIZATION": "Basic x"}, big) is None
    assert gate("POST", {"COOKIE": "session=x"}, big) is None


def test_gate_lets_anonymous_writes_through_where_they_are_allowed():
    gate = BodyGate(Access({"read", "upload"}), max_upload_size=10_000_000, realm="r")
    assert gate("POST", {"EXPECT": "100-continue"}, 5_000_000) is None


def test_open_files_limit_is_raised_to_the_hard_limit():
    script = (
        "import resource\n"
        "from pypirepo.hardening import raise_open_files_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "raise_open_files_limit(100)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard) or hard == -1)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_bad_header_timeout_stops_the_start_with_one_line(value):
    from pypirepo.hardening import create_server

    with pytest.raises(SystemExit) as exc:
        create_server(object(), header_timeout=value, listen="127.0.0.1:0")
    assert str(exc.value).startswith("pypirepo: configuration error: header_timeout:")
