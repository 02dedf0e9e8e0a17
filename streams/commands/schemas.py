"""``crowdsafe schemas``: write the JSON Schemas of every topic payload (for other teams)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.config.paths import checkout_root
from streams.schema.payloads import SCHEMA_VERSION, SCHEMAS


def default_dir() -> Path:
    """The checked-in copies in a checkout (``deploy/schemas/``); ``./schemas`` when installed."""
    root = checkout_root()
    return root / "deploy" / "schemas" if root is not None else Path("schemas")


def schema_files() -> dict[str, str]:
    """File name -> JSON text of each payload's schema."""
    return {
        f"{name}.v{SCHEMA_VERSION}.json": json.dumps(model.model_json_schema(), indent=2) + "\n"
        for name, model in SCHEMAS.items()
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="write the JSON Schemas of the topic payloads")
    p.add_argument(
        "--out", type=Path, help="folder (default: deploy/schemas/ in a checkout, else ./schemas)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.out = args.out or default_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (args.out / name).write_text(text)
        print(f"schemas: {args.out / name}")
    return 0
