"""``crowdsafe schemas``: write the JSON Schemas of every topic payload (for other teams)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.config.settings import ROOT
from streams.schema.payloads import SCHEMA_VERSION, SCHEMAS

DEFAULT_DIR = ROOT / "deploy" / "schemas"


def schema_files() -> dict[str, str]:
    """File name -> JSON text of each payload's schema."""
    return {
        f"{name}.v{SCHEMA_VERSION}.json": json.dumps(model.model_json_schema(), indent=2) + "\n"
        for name, model in SCHEMAS.items()
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="write the JSON Schemas of the topic payloads")
    p.add_argument("--out", type=Path, default=DEFAULT_DIR, help=f"folder (default {DEFAULT_DIR})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (args.out / name).write_text(text)
        print(f"schemas: {args.out / name}")
    return 0
