"""``crowdsafe bench``: run benchmark suites and write their results to a JSON file."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import time
from pathlib import Path

from streams import bench


def suites() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run benchmarks and write results to a file")
    p.add_argument("--suite", action="append", choices=suites(), help="suite to run (repeatable)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions, for smoke runs")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results/latest.json"),
        help="results JSON (default: bench-results/latest.json)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results: dict[str, object] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
    }
    for name in args.suite or suites():
        print(f"bench: {name} ...", flush=True)
        results[name] = importlib.import_module(f"streams.bench.{name}").run(args.quick)
        print(json.dumps(results[name], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: results written to {args.out}")
    return 0
