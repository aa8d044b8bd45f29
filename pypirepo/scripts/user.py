"""pypirepo-user <ini> <command>: users, groups, grants and API tokens, from the command line.

    pypirepo-user production.ini add alice [--admin] [--password-stdin | --no-password]
    pypirepo-user production.ini passwd alice [--password-stdin]
    pypirepo-user production.ini remove alice
    pypirepo-user production.ini admin alice [--off]
    pypirepo-user production.ini group team --add alice bob [--remove carol] [--delete]
    pypirepo-user production.ini grant release 'team-*' upload group:team
    pypirepo-user production.ini revoke release 'team-*' upload group:team   (or --id N)
    pypirepo-user production.ini list [users|groups|grants|tokens] [--json]
    pypirepo-user production.ini token alice [--upload] [--repository R] [--project P]
                                             [--expires 2030-01-31 | --expires-in 90d]
                                             [--note TEXT]
    pypirepo-user production.ini token --revoke ID

It reads the ini as the server does (PYPIREPO_* overrides included) and changes the
database the servers read; they follow within a second. Users, groups and grants change
only with `auth.backend = sql` (with `config` the ini holds them); API tokens live in the
database with either backend. Passwords are asked on the terminal (twice), or read from
the first line of standard input with --password-stdin; never printed, never arguments.
A new token's secret is printed once, alone on standard output.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys

from ..access.admin import grant_words
from ..errors import Refused
from ..settings import one_line_exit
from .common import load

LISTS = ("users", "groups", "grants", "tokens")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pypirepo-user", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ini")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    add = sub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="a server admin")
    _password_options(add, none_help="no password: the user logs in with API tokens only")

    passwd = sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    _password_options(passwd, none_help="remove the password: API tokens only")

    remove = sub.add_parser("remove", help="remove a user (their tokens are revoked)")
    remove.add_argument("name")

    admin = sub.add_parser("admin", help="make a user a server admin")
    admin.add_argument("name")
    admin.add_argument("--off", action="store_true", help="no longer an admin")

    group = sub.add_parser("group", help="make a group, change its members, or remove it")
    group.add_argument("name")
    group.add_argument("--add", nargs="+", default=[], metavar="USER")
    group.add_argument("--remove", nargs="+", default=[], metavar="USER")
    group.add_argument("--delete", action="store_true", help="remove the group and its grants")

    for verb, what in (("grant", "grant a permission"), ("revoke", "revoke a grant")):
        g = sub.add_parser(verb, help=what,
                           description=f"{what}: <repository or *> <project pattern or *> "
                                       "<permission> <who>, as a line of the ini's `grants`")
        g.add_argument("words", nargs="*", metavar="repository pattern permission who")
        if verb == "revoke":
            g.add_argument("--id", type=int, help="the grant's id (pypirepo-user list grants)")

    listing = sub.add_parser("list", help="list users, groups, grants or tokens")
    listing.add_argument("what", nargs="?", choices=LISTS, default="users")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--revoked", action="store_true", help="tokens: revoked ones too")

    token = sub.add_parser("token", help="make an API token (printed once), or revoke one")
    token.add_argument("user", nargs="?")
    token.add_argument("--upload", action="store_true", help="may upload (default: read)")
    token.add_argument("--repository", action="append", metavar="NAME",
                       help="only this repository (repeatable; default: all)")
    token.add_argument("--project", action="append", metavar="PATTERN",
                       help="only projects matching (repeatable; default: all)")
    token.add_argument("--expires", metavar="WHEN", help="an ISO 8601 date or time (UTC)")
    token.add_argument("--expires-in", metavar="DURATION", help="30d, 12h, ...")
    token.add_argument("--note", help="what the token is for")
    token.add_argument("--revoke", type=int, metavar="ID", help="revoke this token instead")
    return p


def _password_options(p, none_help: str) -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p.add_argument("--no-password", action="store_true", help=none_help)


def read_password(args) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise Refused(400, "The two passwords differ.")
    else:
        raise Refused(400, "No terminal to ask the password on: pass --password-stdin "
                           "and send it on standard input.")
    if not password:
        raise Refused(400, "An empty password.")
    return password


def open_admin(ini: str):
    """The access service as the server builds it, from the ini, and its admin side."""
    from ..access import Access
    from ..access.admin import AccessAdmin
    from ..access.backends import backend_from_settings
    from ..db import Database
    from ..repositories.config import read_layout

    settings, config = load(ini)
    with one_line_exit():
        db = Database.open(config.database_url, config.auto_migrate)
        layout = list(read_layout(settings))
        # The bootstrap user exists for what is decided here; its password is never
        # checked by this command (and not made: the server makes it at its first start).
        placeholder = secrets.token_hex(16) if config.bootstrap_user else None
        backend, tokens = backend_from_settings(settings, config, layout, placeholder, db)
    return AccessAdmin(Access(backend, layout, 0, tokens)), db


def main(argv=None):
    args = parser().parse_args(argv)
    admin, db = open_admin(args.ini)
    try:
        run(admin, args)
    except Refused as exc:
        hint = ""
        if exc.status == 409 and admin.backend.name != "sql" and args.command in (
                "add", "passwd"):
            from ..access import HOW_TO_ADD_A_USER

            hint = f" To add a user to the ini, {HOW_TO_ADD_A_USER}."
        sys.exit(f"pypirepo-user: {exc.message}{hint}")
    finally:
        if admin.tokens is not None:
            admin.tokens.close()
        db.engine.dispose()


def run(admin, args) -> None:
    from ..access.admin import CONSOLE

    command = args.command
    if command == "add":
        admin.changeable().not_from_ini(args.name)  # before a password is asked for nothing
        admin.add_user(CONSOLE, {"name": args.name, "password": read_password(args),
                                 "admin": args.admin})
        print(f"added user {args.name}" + (" (admin)" if args.admin else ""))
    elif command == "passwd":
        admin.changeable().not_from_ini(args.name)
        admin.user(CONSOLE, args.name)  # 404 before the password is asked for
        admin.change_user(CONSOLE, args.name, {"password": read_password(args)})
        print(f"changed the password of {args.name}")
    elif command == "remove":
        admin.remove_user(CONSOLE, args.name)
        print(f"removed user {args.name}; their API tokens are revoked")
    elif command == "admin":
        admin.change_user(CONSOLE, args.name, {"admin": not args.off})
        print(f"{args.name} is {'no longer ' if args.off else ''}a server admin")
    elif command == "group":
        _group(admin, args)
    elif command in ("grant", "revoke"):
        _grant(admin, args)
    elif command == "list":
        _list(admin, args)
    elif command == "token":
        _token(admin, args)


def _group(admin, args) -> None:
    from ..access.admin import CONSOLE

    if args.delete:
        admin.remove_group(CONSOLE, args.name)
        print(f"removed group {args.name}")
        return
    try:
        members = admin.group(CONSOLE, args.name)["members"]
    except Refused as exc:
        if exc.status != 404:
            raise
        members = []
    wanted = [m for m in members if m not in args.remove] + \
        [m for m in args.add if m not in members]
    group = admin.set_group(CONSOLE, args.name, {"members": wanted})
    print(f"group {group['name']}: {' '.join(group['members']) or '(no members)'}")


def _grant(admin, args) -> None:
    from ..access.admin import CONSOLE

    if args.command == "revoke" and args.id is not None:
        if args.words:
            raise Refused(400, "Give either --id or the grant's four words.")
        admin.remove_grant(CONSOLE, args.id)
        print(f"revoked grant {args.id}")
        return
    if len(args.words) != 4:
        raise Refused(400, f"{args.command} takes <repository or *> <project pattern or *> "
                           "<permission> <who>, e.g. release 'team-*' upload group:team.")
    repository, pattern, permission, principal = args.words
    payload = {"repository": repository, "pattern": pattern, "permission": permission,
               "principal": principal}
    if args.command == "grant":
        made = admin.add_grant(CONSOLE, payload)
        print(f"grant {made['id']}: {grant_words(made)}")
        return
    wanted = admin.backend.checked_grant(_as_grant(payload)) \
        if admin.backend.name == "sql" else None
    admin.changeable()
    for listed in admin.grants(CONSOLE):
        if listed["id"] is not None and _as_grant(listed) == wanted:
            admin.remove_grant(CONSOLE, listed["id"])
            print(f"revoked grant {listed['id']}: {grant_words(listed)}")
            return
    raise Refused(404, "No such grant in the database (pypirepo-user list grants).")


def _as_grant(d: dict):
    from ..access.model import Grant

    return Grant(d["repository"], d["pattern"], d["permission"], d["principal"])


def _list(admin, args) -> None:
    from ..access.admin import CONSOLE

    if args.what == "tokens":
        found = admin.token_list(CONSOLE, everyone=True, revoked=args.revoked)
    else:
        found = getattr(admin, args.what)(CONSOLE)
    if args.json:
        print(json.dumps({args.what: found}, indent=2))
        return
    for item in found:
        print(_line(args.what, item))
    if not found:
        print(f"(no {args.what})", file=sys.stderr)


def _line(what: str, item: dict) -> str:
    if what == "users":
        flags = [f for f, on in (("admin", item["admin"]), ("ini", item["source"] == "ini"),
                                 ("no password", not item["password"])) if on]
        groups = f" groups: {' '.join(item['groups'])}" if item["groups"] else ""
        return f"{item['name']}{' (' + ', '.join(flags) + ')' if flags else ''}{groups}"
    if what == "groups":
        return f"{item['name']}{' (ini)' if item['source'] == 'ini' else ''}: " \
               f"{' '.join(item['members']) or '(no members)'}"
    if what == "grants":
        return f"{item['id'] if item['id'] is not None else 'ini':>5}  {grant_words(item)}"
    state = "revoked" if item["revoked"] else (f"expires {item['expires']}"
                                               if item["expires"] else "no expiry")
    return (f"{item['id']:>5}  {item['user']}  {item['prefix']}...  {item['permission']}  "
            f"repositories {','.join(item['repositories'])}  projects "
            f"{','.join(item['projects'])}  {state}  last used {item['last_used'] or 'never'}"
            + (f"  ({item['note']})" if item["note"] else ""))


def _token(admin, args) -> None:
    from ..access.admin import CONSOLE

    if args.revoke is not None:
        admin.revoke_token(CONSOLE, args.revoke)
        print(f"revoked token {args.revoke}", file=sys.stderr)
        return
    if not args.user:
        raise Refused(400, "Whose token? pypirepo-user <ini> token <user> [options].")
    payload = {"user": args.user, "permission": "upload" if args.upload else "read",
               "repositories": args.repository or ["*"], "projects": args.project or ["*"],
               "expires": args.expires, "expires_in": args.expires_in, "note": args.note}
    secret, info = admin.create_token(CONSOLE, payload)
    print(f"token {info['id']} for {info['user']}: {info['permission']}, repositories "
          f"{','.join(info['repositories'])}, projects {','.join(info['projects'])}, "
          f"{'expires ' + info['expires'] if info['expires'] else 'no expiry'}. "
          "Shown this once; use it as the password with the user name __token__:",
          file=sys.stderr)
    print(secret, flush=True)
