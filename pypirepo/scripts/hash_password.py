"""pypirepo-hash-password: print a passlib hash for a `user.<name> =` line."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..access import PASSWORDS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("password", nargs="?", help="read from the terminal (or stdin) if absent")
    args = parser.parse_args(argv)
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\n")
    if not password:
        sys.exit("pypirepo-hash-password: empty password")
    print(PASSWORDS.hash(password))
