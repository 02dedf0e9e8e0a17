"""The ``crowdsafe`` command: one sub-command per module in ``streams.commands``.

Each command module exposes ``register(subparsers) -> None`` that adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from streams import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crowdsafe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"streams.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
