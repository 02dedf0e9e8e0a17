"""``crowdsafe schemas``: write the JSON Schemas of every topic payload (for other teams)."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from streams.config.paths import checkout_root
from streams.schema.catalog import SCHEMAS, latest


def default_dir() -> Path:
    """The checked-in copies in a checkout (``deploy/schemas/``); ``./schemas`` when installed."""
    root = checkout_root()
    return root / "deploy" / "schemas" if root is not None else Path("schemas")


DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model: type[msgspec.Struct]) -> dict[str, Any]:
    """The model's JSON Schema with the model itself at the top level (not behind a ``$ref``)
    and the models it refers to under ``$defs``.

    >>> from streams.schema.payloads import ReadingBatch
    >>> s = json_schema(ReadingBatch)
    >>> s["title"], s["required"], s["properties"]["readings"]["items"], list(s["$defs"])
    ('ReadingBatch', ['readings'], {'$ref': '#/$defs/Reading'}, ['Reading'])
    """
    (_,), components = msgspec.json.schema_components([model], ref_template="#/$defs/{name}")
    for component in components.values():  # docstrings, as readers of the schema see them
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])
    top = components.pop(model.__name__)
    return {"$schema": DIALECT, **top, **({"$defs": components} if components else {})}


def schema_files() -> dict[str, str]:
    """File name -> JSON text of each payload's schema (older versions marked deprecated)."""
    out = {}
    for (name, version), model in SCHEMAS.items():
        schema = json_schema(model)
        if version < latest(name):
            schema["deprecated"] = True
        out[f"{name}.v{version}.json"] = json.dumps(schema, indent=2) + "\n"
    return out


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
