"""``crowdsafe bench``: run benchmark suites and write their results to a JSON file."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import platform
import re
import sys
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path

from streams import bench

# The order suites run in: the pipeline first, so the latency suite can take the measured
# capacity from it; the rest alphabetically after these.
FIRST = ("pipeline", "latency", "scaleout")
# No suite may hold the bench longer than this (each bounds its own waits well below it; this
# is the guard for one that does not): the bench records a timeout and goes on.
SUITE_GUARD_S = {True: 300.0, False: 1800.0}  # --quick, full


def suites() -> list[str]:
    """Every suite: the modules of ``streams/bench/`` not starting with ``_`` (helpers)."""
    names = {m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")}
    return [n for n in FIRST if n in names] + sorted(names - set(FIRST))


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
    "accounted_readings_ratio": ("pipeline", "accounted_readings_ratio"),
    "worker_readings_per_s_single": (
        "pipeline", "one_reading_per_message", "pipeline_worker_readings_per_s_median"),
    "worker_readings_per_s_batched20": (
        "pipeline", "twenty_readings_per_message", "pipeline_worker_readings_per_s_median"),
    "raw_consumer_readings_per_s_batched20": (
        "pipeline", "twenty_readings_per_message", "raw_aiokafka_consumer_readings_per_s_median"),
    "latency_p50_ms_idle": ("latency", "idle", "zone_state_latency_ms_p50"),
    "latency_p99_ms_idle": ("latency", "idle", "zone_state_latency_ms_p99"),
    "latency_p50_ms_at_1000_per_s": ("latency", "at_1000_per_s", "zone_state_latency_ms_p50"),
    "latency_p99_ms_at_1000_per_s": ("latency", "at_1000_per_s", "zone_state_latency_ms_p99"),
    "latency_p99_ms_at_half_capacity": (
        "latency", "at_half_capacity", "zone_state_latency_ms_p99"),
    "latency_p99_ms_at_10000_per_s": ("latency", "at_10000_per_s", "zone_state_latency_ms_p99"),
    "alert_latency_ms_idle": ("latency", "idle", "alert_latency_ms_median"),
    "two_worker_speedup": ("scaleout", "two_worker_speedup"),
    "state_bytes_per_zone": ("detectors", "state_bytes_per_zone"),
    "recovery_s_100000_zones": ("zones", "recovery_s_100000_zones"),
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
        value, reason = results.get(suite), None
        for part in path:
            # A suite that skipped a measurement says why beside it: ``<part>_reason``.
            if isinstance(value, dict) and value.get(part) is None:
                reason = reason or value.get(f"{part}_reason") or value.get("error")
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
        if value is None:
            if suite not in results:
                reason = f"suite {suite} did not run"
            out[f"{key}_reason"] = reason or f"{suite} measured none"
    return out


def machine() -> dict:
    """What the numbers were measured on: cores, CPU model, Python and library versions."""
    model = None
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = found.group(1).strip() if found else None
    except OSError:
        pass
    versions = {}
    for package in ("faust-streaming", "aiokafka", "kafka-python", "msgspec", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    out = {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor() or None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
    try:
        from streams.config.paths import kafka_resource

        pom = kafka_resource("pom.xml").read_text()
        found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
        # The bundled local broker's version (what `crowdsafe kafka up` runs), not asked of
        # the broker: Kafka's protocol tells API ranges, not the release.
        out["kafka_local_broker"] = found.group(1) if found else None
    except OSError:
        out["kafka_local_broker"] = None
    return out


def run_suite(name: str, quick: bool, results: dict, guard_s: float) -> dict:
    """One suite's results; an error or a suite still running after ``guard_s`` becomes
    ``{"error": ...}`` and the bench goes on. (A suite past the guard is left running in a
    daemon thread: its own waits are bounded, and it ends with the process.)"""
    module = importlib.import_module(f"streams.bench.{name}")
    kwargs = {"results": results} if "results" in inspect.signature(module.run).parameters else {}
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = module.run(quick, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - recorded, the bench goes on
            box["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            box["traceback"] = traceback.format_exc()[-4000:]

    start = time.monotonic()
    thread = threading.Thread(target=target, name=f"bench-{name}", daemon=True)
    thread.start()
    thread.join(guard_s)
    took = round(time.monotonic() - start, 1)
    if thread.is_alive():
        stopped = _stop_children()
        return {
            "error": f"still running after the bench's guard of {guard_s:g} s"
            + (f"; stopped its processes {stopped}" if stopped else ""),
            "wall_s": took,
        }
    if "error" in box:
        print(box["traceback"], file=sys.stderr, flush=True)
        return {"error": box["error"], "wall_s": took}
    value = box["value"]
    if isinstance(value, dict):
        value.setdefault("wall_s", took)
    return value


def _stop_children() -> list[int]:
    """Stop the process groups this bench started that are still running (workers of a suite
    past the guard, started by ``streams.ops.procs.spawn`` in a session of their own), each by
    its pid: none outlives the bench. (multiprocessing's daemon children end with it anyway.)"""
    from streams.ops import procs

    me, children = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        # Fields 4 and 5 of proc(5): the parent's pid, the process group.
        if int(fields[1]) == me and int(fields[2]) == pid:
            children.append(pid)
    for pid in children:
        procs.stop(pid, grace_s=10)
    return children


def markdown(results: dict) -> str:
    """The summary as a Markdown table (what the README's Benchmarks section quotes).

    >>> print(markdown({"summary": {"a": 1.5, "b": None, "b_reason": "suite x did not run"},
    ...                 "machine": {"cores": 2, "cpu_model": "Z"}, "started": "T"}))
    ... # doctest: +NORMALIZE_WHITESPACE
    # crowdsafe bench, T
    <BLANKLINE>
    2 cores, Z
    <BLANKLINE>
    | key | value |
    |---|---|
    | `a` | 1.5 |
    | `b` | – (suite x did not run) |
    """
    m = results.get("machine", {})
    lines = [
        f"# crowdsafe bench, {results.get('started')}"
        + (" (--quick)" if results.get("quick") else ""),
        "",
        f"{m.get('cores')} cores, {m.get('cpu_model')}",
        "",
        "| key | value |",
        "|---|---|",
    ]
    s = results.get("summary", {})
    for key, value in s.items():
        if key.endswith("_reason"):
            continue
        shown = f"– ({s.get(f'{key}_reason')})" if value is None else f"{value}"
        lines.append(f"| `{key}` | {shown} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    results: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "machine": machine(),
    }
    chosen = [n for n in suites() if n in set(args.suite)] if args.suite else suites()
    for i, name in enumerate(chosen, 1):
        print(f"bench: {name} ({i}/{len(chosen)}) ...", file=sys.stderr, flush=True)
        results[name] = run_suite(name, args.quick, results, SUITE_GUARD_S[args.quick])
        error = results[name].get("error") if isinstance(results[name], dict) else None
        print(f"bench: {name} " + (f"failed: {error}" if error else "done"), file=sys.stderr,
              flush=True)  # fmt: skip
    results["wall_s"] = round(time.monotonic() - start, 1)
    results["summary"] = summary(results)
    print(json.dumps({"summary": results["summary"]}, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    table = args.out.with_suffix(".md")
    table.write_text(markdown(results))
    print(f"bench: {len(chosen)} suite(s) in {results['wall_s']:.0f} s; results written to "
          f"{args.out} and {table}", file=sys.stderr)  # fmt: skip
    return 0
