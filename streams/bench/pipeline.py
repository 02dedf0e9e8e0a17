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
import tempfile
import time
import urllib.request
from pathlib import Path

from streams.config.settings import get_settings
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.intake import parse_message
from streams.testing import Sandbox
from streams.zone.processor import ZoneProcessor
from streams.zone.state import decode_state, encode_state

T0 = 1_764_000_000_000


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
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            start = start or time.perf_counter()
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()


def _processed(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("crowdsafe_readings_total{", "crowdsafe_readings_duplicate_total "))
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pipeline_rate(box: Sandbox, n: int, timeout_s: float = 600) -> tuple[float, float]:
    box.start_worker()
    start = time.perf_counter()
    while (done := _processed(box.web_port)) < n:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"worker processed {done:.0f} of {n} readings in {timeout_s}s")
        time.sleep(0.05)
    rate = n / (time.perf_counter() - start)
    rss = _rss_mb(box.proc.pid)
    box.stop_worker()
    return rate, rss


def _one_layout(messages: list[tuple[bytes, bytes]], n: int, repeats: int) -> dict:
    processor = [_processor_rate(messages) for _ in range(repeats)]
    raw, pipeline, rss = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            box = Sandbox(get_settings().kafka_bootstrap, Path(tmp))
            box.ensure_topics()
            with box.producer() as producer:
                for key, value in messages:
                    producer.send_raw(key, value)
            raw.append(
                asyncio.run(_raw_consume(box.bootstrap, box.topic("readings"), len(messages)))
            )
            rate, mem = _pipeline_rate(box, n)
            pipeline.append(rate)
            rss.append(mem)
    per_message = n / len(messages)
    raw_med, pipe_med = statistics.median(raw) * per_message, statistics.median(pipeline)
    return {
        "messages": len(messages),
        "raw_aiokafka_consumer_readings_per_s_median": round(raw_med),
        "pipeline_worker_readings_per_s_median": round(pipe_med),
        "processor_in_process_readings_per_s_median": round(statistics.median(processor)),
        "pipeline_vs_raw_consumer_ratio": round(pipe_med / raw_med, 3),
        "worker_rss_mb_median": round(statistics.median(rss), 1),
    }


def run(quick: bool) -> dict:
    n = 5_000 if quick else 50_000
    repeats = 1 if quick else 3
    readings = _readings(n)
    single = [(r["zone_id"].encode(), json.dumps({"v": 1, **r}).encode()) for r in readings]
    return {
        "readings": n,
        "runs": repeats,
        "one_reading_per_message": _one_layout(single, n, repeats),
        "twenty_readings_per_message": _one_layout(_batched(readings, 20), n, repeats),
        "note": "worker timed from 'Worker ready' to all readings counted in /metrics; "
        "raw consumer: messages read and JSON-decoded, in readings/s",
    }
