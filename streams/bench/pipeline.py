"""Throughput of the whole worker against a raw aiokafka consumer of the same messages.

Both read the same pre-filled readings topic from the start on the real broker, in one run, so
the ratio says what the pipeline costs over merely reading and decoding the messages; absolute
numbers depend on the (shared, noisy) machine. Also: the processor alone, in process, and the
worker's resident memory after the run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streams.bench._accounting import account
from streams.config.settings import get_settings
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.ops import procs
from streams.ops.progress import Progress
from streams.schema.intake import parse_message
from streams.testing import Sandbox
from streams.zone.processor import ZoneProcessor
from streams.zone.state import decode_state, encode_state

T0 = 1_764_000_000_000
# Bounds of every wait: the whole run, and the time the accounted count may stand still
# before the run is called stalled (a worker applies thousands of readings a second).
WAIT_S = 300.0
STALL_S = 30.0


def _readings(n: int) -> list[dict]:
    sim = Simulator(load_site(get_settings().site), "surge", start_ms=T0, repeat=True)
    out: list[dict] = []
    for _, readings in sim.ticks():
        out += readings
        if len(out) >= n:
            return out[:n]
    return out


def _batched(readings: list[dict], size: int) -> list[tuple[bytes, bytes]]:
    """Consecutive readings of a zone packed ``size`` to a message, as edge gateways would."""
    open_: dict[str, list[dict]] = {}
    out = []
    for r in readings:
        batch = open_.setdefault(r["zone_id"], [])
        batch.append(r)
        if len(batch) == size:
            out.append((r["zone_id"].encode(), json.dumps({"v": 1, "readings": batch}).encode()))
            open_[r["zone_id"]] = []
    out += [
        (z.encode(), json.dumps({"v": 1, "readings": b}).encode()) for z, b in open_.items() if b
    ]
    return out


def _processor_rate(messages: list[tuple[bytes, bytes]], batch: int = 500) -> float:
    """Readings/s of parsing and processing alone, grouped per zone per batch as the worker does."""
    site = load_site(get_settings().site)
    processor, states = ZoneProcessor(site), {}
    start, n = time.perf_counter(), 0
    for i in range(0, len(messages), batch):
        by_zone: dict[str, list] = {}
        for key, value in messages[i : i + batch]:
            readings = parse_message(key, value, site)
            by_zone.setdefault(readings[0].zone_id, []).extend(readings)
            n += len(readings)
        for zone, readings in by_zone.items():
            # Decoded and encoded once per zone per batch, as the worker does with its table.
            state = decode_state(states[zone]) if zone in states else None
            states[zone] = encode_state(processor.apply(zone, state, readings).state)
    return n / (time.perf_counter() - start)


async def _raw_consume(bootstrap: str, topic: str, n: int) -> float:
    """Messages per second that a bare consumer reads and JSON-decodes."""
    from aiokafka import AIOKafkaConsumer

    deadline = time.monotonic() + WAIT_S
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        seen, start = 0, None
        while seen < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            start = start or time.perf_counter()
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return seen / (time.perf_counter() - (start or 0))
    finally:
        await consumer.stop()


def _pipeline_rate(box: Sandbox, n: int, label: str) -> tuple[float | None, float, dict]:
    """Readings/s from the first look after 'Worker ready' until every reading is accounted for
    (applied, duplicate or dead-lettered), over the readings after that look; None, with the
    diagnosis in the accounting, when that never happens."""
    box.start_worker(timeout=120)
    progress = Progress(f"bench pipeline: {label}", n)
    acc = account(box, n, timeout_s=WAIT_S, stall_s=STALL_S, progress=progress)
    progress.done()
    rate = acc.rate
    rss = procs.rss_mb(box.proc.pid) if box.proc.poll() is None else None
    rss = float("nan") if rss is None else rss
    box.stop_worker()
    if acc.outcome != "accounted":
        print(f"bench pipeline: {label}: {acc.diagnosis()}", file=sys.stderr, flush=True)
    return rate, rss, acc.as_dict(log_lines=25)


def _one_layout(messages: list[tuple[bytes, bytes]], n: int, repeats: int, label: str) -> dict:
    processor = [_processor_rate(messages) for _ in range(repeats)]
    raw, pipeline, rss, accounting = [], [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            box = Sandbox(get_settings().kafka_bootstrap, Path(tmp))
            try:
                box.ensure_topics()
                with box.producer() as producer:
                    for key, value in messages:
                        producer.send_raw(key, value)
                raw.append(
                    asyncio.run(_raw_consume(box.bootstrap, box.topic("readings"), len(messages)))
                )
                rate, mem, acc = _pipeline_rate(box, n, label)
            finally:
                box.stop_worker()
                box.delete_topics()
            if rate is not None:
                pipeline.append(rate)
            rss.append(mem)
            accounting.append(acc)
    per_message = n / len(messages)
    raw_med = statistics.median(raw) * per_message
    pipe_med = statistics.median(pipeline) if pipeline else None
    out = {
        "messages": len(messages),
        "raw_aiokafka_consumer_readings_per_s_median": round(raw_med),
        "pipeline_worker_readings_per_s_median": None if pipe_med is None else round(pipe_med),
        "pipeline_worker_readings_per_s_runs": [round(r) for r in pipeline],
        "processor_in_process_readings_per_s_median": round(statistics.median(processor)),
        "pipeline_vs_raw_consumer_ratio": pipe_med and round(pipe_med / raw_med, 3),
        "worker_rss_mb_median": round(statistics.median(rss), 1),
        "accounted_readings_ratio": _worst([a["accounted_ratio"] for a in accounting]),
        "accounting": accounting,
    }
    if pipe_med is None:  # the summary shows why: the first run's diagnosis
        out["pipeline_worker_readings_per_s_median_reason"] = next(
            (a["diagnosis"] for a in accounting if "diagnosis" in a),
            "the worker had done more than half the readings before its first look: too few "
            "left to time (more readings would)",
        )
    return out


def _worst(ratios: list[float]) -> float:
    """The ratio furthest from 1 (nothing lost, nothing counted twice).

    >>> _worst([1.0, 0.9992, 1.0004])
    0.9992
    """
    return max(ratios, key=lambda r: abs(r - 1))


# Twenty per message, the worker goes through the same readings several times faster and was
# once nearly done before the first look: it gets this many times the readings, so both layouts
# keep it busy for seconds.
BATCHED_READINGS_FACTOR = 5


def run(quick: bool) -> dict:
    n = 20_000 if quick else 50_000
    repeats = 1 if quick else 3
    readings = _readings(n)
    single = [(r["zone_id"].encode(), json.dumps({"v": 1, **r}).encode()) for r in readings]
    single_out = _one_layout(single, n, repeats, "one reading per message")
    del single
    n_batched = n * BATCHED_READINGS_FACTOR
    batched_out = _one_layout(
        _batched(_readings(n_batched), 20), n_batched, repeats, "twenty per message"
    )
    batched_out["readings"] = n_batched
    worst = _worst(
        [single_out["accounted_readings_ratio"], batched_out["accounted_readings_ratio"]]
    )
    return {
        "readings": n,
        "runs": repeats,
        # The run furthest from 1 (every reading applied, duplicate or dead-lettered once).
        "accounted_readings_ratio": worst,
        "one_reading_per_message": single_out,
        "twenty_readings_per_message": batched_out,
        "note": "worker timed from its first /metrics after 'Worker ready' to all readings "
        "accounted (applied + duplicate + dead-lettered), over the readings after that look; "
        "a run that stalls reports its diagnosis; "
        "raw consumer: messages read and JSON-decoded, in readings/s",
    }
