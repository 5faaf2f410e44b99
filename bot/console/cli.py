"""`bot operators add|disable|enable|list`: the console's accounts (the first admin is created here)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any


def _auth() -> Any:
    from bot.config import get_settings
    from bot.console.auth import Auth
    from bot.store.factory import open_store

    return Auth(open_store(get_settings().resolved_database_url))


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("error: no terminal to ask for the password; use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("error: the passwords differ", file=sys.stderr)
        return None
    return first


def _add(args: argparse.Namespace) -> int:
    from bot.console.auth import OperatorError

    password = _read_password(args)
    if password is None:
        return 2
    auth = _auth()
    try:
        added = auth.add_operator(args.username, password, args.role)
    except OperatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        auth.store.close()
    if not added:
        print(f"error: operator {args.username!r} exists already", file=sys.stderr)
        return 1
    print(f"operator {args.username} added ({args.role})", file=sys.stderr)
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    auth = _auth()
    try:
        changed = auth.set_disabled(args.username, disabled)
    finally:
        auth.store.close()
    if not changed:
        print(f"error: no operator {args.username!r}", file=sys.stderr)
        return 1
    state = "disabled (signed out everywhere)" if disabled else "enabled"
    print(f"operator {args.username} {state}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    auth = _auth()
    try:
        with auth.store.desk_read() as desk:
            operators = desk.operators()
    finally:
        auth.store.close()
    for op in operators:
        state = "disabled" if op.disabled else "active"
        print(f"{op.username}\t{op.role}\t{state}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ops = sub.add_parser("operators", help="accounts for the operators' console at /console")
    osub = ops.add_subparsers(dest="operators_command", required=True)
    add = osub.add_parser("add", help="create an account (asks for the password twice)")
    add.add_argument("username")
    add.add_argument("--role", choices=["consultant", "admin"], default="consultant")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    add.set_defaults(handler=_add)
    dis = osub.add_parser("disable", help="disable an account and end its sessions")
    dis.add_argument("username")
    dis.set_defaults(handler=lambda args: _set_disabled(args, True))
    ena = osub.add_parser("enable", help="enable a disabled account again")
    ena.add_argument("username")
    ena.set_defaults(handler=lambda args: _set_disabled(args, False))
    lst = osub.add_parser("list", help="list the accounts")
    lst.set_defaults(handler=_list)
