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


# Summary key -> (suite, path in its results): the numbers runs are compared by. A key whose
# suite did not run, or that no suite measures yet, is null with the reason beside it.
SUMMARY: dict[str, tuple[str, ...]] = {
    "worker_readings_per_s_single": (
        "pipeline", "one_reading_per_message", "pipeline_worker_readings_per_s_median"),
    "worker_readings_per_s_batched20": (
        "pipeline", "twenty_readings_per_message", "pipeline_worker_readings_per_s_median"),
    "raw_consumer_readings_per_s_batched20": (
        "pipeline", "twenty_readings_per_message", "raw_aiokafka_consumer_readings_per_s_median"),
    "state_bytes_per_zone": ("detectors", "state_bytes_per_zone"),
    "restart_resume_s": ("faults", "restart_resume_s"),
    "failover_s": ("faults", "failover_s"),
    "centre_push_latency_ms": ("centre", "push_latency_ms_median"),
}  # fmt: skip


def summary(results: dict) -> dict:
    """The summary object: each key's value from its suite, or null and ``<key>_reason``.

    >>> summary({"faults": {"restart_resume_s": 2.1, "failover_s": 9.0}})["restart_resume_s"]
    2.1
    >>> summary({})["failover_s_reason"]
    'suite faults did not run'
    """
    out: dict = {}
    for key, (suite, *path) in SUMMARY.items():
        value = results.get(suite)
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
        if value is None:
            out[f"{key}_reason"] = (
                f"suite {suite} did not run" if suite not in results else f"{suite} measured none"
            )
    return out


def run(args: argparse.Namespace) -> int:
    results: dict[str, object] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
    }
    for name in args.suite or suites():
        print(f"bench: {name} ...", flush=True)
        results[name] = importlib.import_module(f"streams.bench.{name}").run(args.quick)
        print(json.dumps(results[name], indent=2), flush=True)
    results["summary"] = summary(results)
    print(json.dumps({"summary": results["summary"]}, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: results written to {args.out}")
    return 0
