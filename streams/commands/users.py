"""``crowdsafe users``: the command centre's users (name, role, token hash)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="add, list or remove command-centre users")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "add",
        help="add a user (or give one a new token); prints the token once",
        description="Roles: viewer (read), operator (also acknowledge and raise manual "
        "incidents), supervisor (also resolve and silence). Only a hash of the token is kept.",
    )
    a.add_argument("name", help="the user's name, as the audit records their actions")
    a.add_argument(
        "--role", required=True, choices=["viewer", "operator", "supervisor"],
        help="what they may do (see above)",
    )  # fmt: skip
    rm = actions.add_parser("remove", help="remove a user (their sessions end)")
    rm.add_argument("name", help="the user to remove")
    actions.add_parser("list", help="the users and their roles")
    for q in (a, rm, *actions.choices.values()):
        if not any(x.dest == "file" for x in q._actions):
            q.add_argument(
                "--file", type=Path,
                help="users file (default: CROWDSAFE_USERS_FILE, else "
                "<CROWDSAFE_STATE_DIR>/centre/users.toml)",
            )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.centre.auth import UsersError, add_user, read_users, remove_user
    from streams.config.settings import get_settings

    path = args.file or get_settings().centre_users_file
    try:
        if args.action == "add":
            token = add_user(path, args.name, args.role)
            print(f"user {args.name} ({args.role}) in {path}; their token, shown only now:")
            print(token)
            return 0
        if args.action == "remove":
            if not remove_user(path, args.name):
                print(f"crowdsafe users: no user {args.name!r} in {path}", file=sys.stderr)
                return 1
            print(f"user {args.name} removed from {path}")
            return 0
        for u in read_users(path):
            print(f"{u.name}\t{u.role}")
        return 0
    except UsersError as exc:
        print(f"crowdsafe users: {exc}", file=sys.stderr)
        return 2
