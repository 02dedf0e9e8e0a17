"""The ``crowdsafe`` command: one sub-command per module in ``streams.commands``.

Each command module exposes ``register(subparsers) -> None`` that adds its parser and sets
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import sys

from kafka.errors import KafkaError
from pydantic import ValidationError

from streams import commands
from streams.config.kafka import KafkaConfigError
from streams.config.site import SiteError

DESCRIPTION = (
    "Real-time crowd safety: people counts from cameras, gates and sensors in, zone density, "
    "level of service and alerts out, through Kafka. Start with `crowdsafe demo`."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crowdsafe", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"crowdsafe {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"streams.commands.{info.name}").register(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("crowdsafe")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SiteError as exc:
        print(f"crowdsafe {args.command}: {exc}", file=sys.stderr)
    except ValidationError as exc:  # settings from the environment
        print(f"crowdsafe {args.command}: bad setting: {_settings_error(exc)}", file=sys.stderr)
    except KafkaConfigError as exc:
        print(f"crowdsafe {args.command}: bad Kafka setting: {exc}", file=sys.stderr)
    except KafkaError as exc:  # the cluster is unreachable, refuses us, or times out
        print(f"crowdsafe {args.command}: {_kafka_error(exc)}", file=sys.stderr)
        return 1
    return 2


def _kafka_error(exc: Exception) -> str:
    from streams.config.settings import get_settings

    try:
        bootstrap = get_settings().kafka_bootstrap
    except ValidationError:
        bootstrap = "?"
    name, text = type(exc).__name__, str(exc)
    what = text if text.startswith(name) else f"{name}: {text}"
    return f"Kafka at {bootstrap}: {what}".replace("\n", " ")[:400]


def _settings_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    env = "KAFKA_BOOTSTRAP" if field == "KAFKA_BOOTSTRAP" else f"CROWDSAFE_{field.upper()}"
    return f"{env}={err.get('input')!r}: {err['msg']}"


if __name__ == "__main__":
    sys.exit(main())
