"""pypirepo-reindex <ini>: reconcile the metadata cache with storage, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time

from ..metadata.rebuild import reconcile
from ..db import Database
from ..settings import one_line_exit
from ..storage import storage_from_settings
from ..repositories import Deps, Repositories
from .common import load


class Progress:
    """A one-line bar on stderr; plain lines when stderr is not a terminal."""

    def __init__(self, stream=sys.stderr, width=40):
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last = -1

    def __call__(self, done, total):
        pct = 100 if not total else int(done * 100 / total)
        if pct == self._last:
            return
        self._last = pct
        filled = self.width * pct // 100
        line = (f"reading records [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total} {time.monotonic() - self.started:.1f}s")
        if self.tty:
            self.stream.write("\r" + line)
            if done >= total:
                self.stream.write("\n")
        elif pct % 10 == 0:
            self.stream.write(line + "\n")
        self.stream.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ini")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    settings, config = load(args.ini)
    with one_line_exit():
        storage = storage_from_settings(settings)
        db = Database.open(config.database_url, config.auto_migrate)
        # The repositories as the server declares them, without starting their upstreams:
        # where each keeps its files.
        shelves = Repositories.build(settings, Deps(storage, db), serve=False).shelves()
    result = reconcile(storage, db.session_factory, shelves=shelves,
                       progress=None if args.quiet else Progress())
    print(f"added {result.added}, removed {result.removed}, unchanged {result.unchanged}"
          f" in {result.seconds:.2f}s")
