"""pypirepo-migrate <ini> [revision]: bring the database schema up to date."""

from __future__ import annotations

import argparse

from ..db import migrate
from ..db.engine import make_engine
from ..settings import one_line_exit
from .common import load


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ini")
    parser.add_argument("revision", nargs="?", default="head")
    args = parser.parse_args(argv)
    _settings, config = load(args.ini)
    with one_line_exit():
        migrate.upgrade(make_engine(config.database_url), args.revision)
    print(f"database at revision {args.revision}")
