"""End-to-end latency: a reading produced → its zone state (and, for a reading over the critical
density, its alert) read by an outside consumer, at idle, 1,000 readings/s, half the measured
capacity and 10,000 readings/s (when half the capacity reaches it).

One worker on the real broker. A paced producer (the edge's ``ReadingProducer``: acks=all,
linger 20 ms, one reading per message, as a camera sends them) stamps every reading with an
event time unique in its zone and notes the wall-clock time it handed it to the client. A plain
kafka-python consumer **in another process** (so neither side waits for the other's Python
lock) tails ``zone-state`` and ``alerts`` from their end and notes when each record arrived;
a zone-state record is matched to its reading by (zone, event time), an alert by its member's
event time. Latency at saturation only measures the queue, hence half the capacity: taken from
the ``pipeline`` suite of the same bench run (one reading per message), else measured here.

Every wait is bounded; readings with no zone state by the end are counted (``unmatched``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from streams.config.settings import get_settings
from streams.config.site import load_site
from streams.ops.progress import Progress
from streams.testing import Sandbox

IDLE_PER_S = 5.0
TARGET_PER_S = 10_000.0
ALERT_PROBES = 2  # readings over the critical density per level, each in a zone of its own
DRAIN_S = 15.0  # after the last reading, how long records may still come


def _tail(bootstrap: str, topics: list[str], ready, stop, conn) -> None:
    """Child process: tail ``topics`` from their end; send back (topic, zone, ts or member
    event times, arrival time) for every record once ``stop`` is set."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)  # resolve the end now, before any reading is produced
    ready.set()
    seen: list[tuple] = []
    while not stop.is_set():
        for tp, records in consumer.poll(timeout_ms=100, max_records=5000).items():
            now = time.time()
            for r in records:
                seen.append((tp.topic, r.value, now))
    consumer.close()
    out = []
    for topic, value, arrived in seen:  # decoded after the run: not on the clock
        body = json.loads(value)
        if topic == topics[0]:
            out.append(("state", body.get("zone_id"), body.get("ts"), arrived))
        else:
            for m in body.get("members", []):
                if m.get("kind") == "density" and m.get("state") == "raised":
                    out.append(("alert", body.get("zone_id"), m.get("ts"), arrived))
    conn.send(out)
    conn.close()


class _Load:
    """Readings for every zone, round robin, from one level source each."""

    def __init__(self, site) -> None:
        self.site = site
        self.sources = {
            z.id: next(s for s in site.sources_by_zone[z.id] if s.kind != "gate")
            for z in site.zones
        }
        # Counts well under warning and well over critical, per zone: asked for every reading
        # sent (up to 10,000/s, beside the worker being timed), so computed once.
        limits = {z.id: (site.thresholds(z), z.area_m2) for z in site.zones}
        self.calm_count = {z: int(0.2 * t.warning * a) for z, (t, a) in limits.items()}
        self.critical_count = {
            z: min(1_000_000, int(5 * t.critical * a)) for z, (t, a) in limits.items()
        }
        self.zones = [z.id for z in site.zones]
        self.last_ts = dict.fromkeys(self.zones, 0)
        self.seq = time.time_ns() // 1000
        self.sent: dict[tuple[str, int], float] = {}
        self.probes: dict[tuple[str, int], float] = {}
        self.i = 0

    def reading(self, zone_id: str, count: int) -> tuple[bytes, bytes, int]:
        # A unique event time per zone: the zone-state record of (zone, ts) is this reading's.
        # A second behind the clock, so the zone is judged at it (never ahead of the worker's
        # clock); latency is timed on the wall clock, not from the event time.
        ts = max(int(time.time() * 1000) - 1000, self.last_ts[zone_id] + 1)
        self.last_ts[zone_id] = ts
        self.seq += 1
        source = self.sources[zone_id]
        body = {"v": 1, "source_id": source.id, "kind": source.kind, "zone_id": zone_id,
                "ts": ts, "seq": self.seq, "count": count}  # fmt: skip
        return zone_id.encode(), json.dumps(body, separators=(",", ":")).encode(), ts


def _pace(producer, load: _Load, rate: float, seconds: float, probe_zones: list[str]) -> int:
    """Send ``rate`` readings/s for ``seconds`` (in 10 ms steps), and one reading over the
    critical density in each of ``probe_zones``, spread over the run. Readings sent."""
    start = time.monotonic()
    due, n = 0.0, 0
    probes_at = [seconds * (k + 1) / (len(probe_zones) + 1) for k in range(len(probe_zones))]
    while (elapsed := time.monotonic() - start) < seconds:
        due = rate * elapsed
        while n < due:
            zone_id = load.zones[load.i % len(load.zones)]
            load.i += 1
            key, value, ts = load.reading(zone_id, load.calm_count[zone_id])
            load.sent[(zone_id, ts)] = time.time()
            producer.send_raw(key, value)
            n += 1
        while probes_at and elapsed >= probes_at[0]:
            probes_at.pop(0)
            zone_id = probe_zones.pop(0)
            key, value, ts = load.reading(zone_id, load.critical_count[zone_id])
            load.probes[(zone_id, ts)] = time.time()
            producer.send_raw(key, value)
        time.sleep(max(0.0, min(0.01, (n + 1) / rate - (time.monotonic() - start))))
    producer.flush()
    return n


def _percentile(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile.

    >>> _percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5), _percentile(list(range(1, 101)), 0.99)
    (3.0, 99)
    """
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def _level(box: Sandbox, load: _Load, rate: float, seconds: float, probe_zones: list[str]) -> dict:
    """One load level: its latencies (ms) and how many readings found their zone state."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    topics = [box.topic("zone-state"), box.topic("alerts")]
    tail = ctx.Process(target=_tail, args=(box.bootstrap, topics, ready, stop, child), daemon=True)
    tail.start()
    try:
        if not ready.wait(60):
            return {"error": "the tailing consumer did not start in 60 s"}
        load.sent.clear()
        load.probes.clear()
        producer = box.producer()
        try:
            t0 = time.monotonic()
            sent = _pace(producer, load, rate, seconds, list(probe_zones))
            achieved = sent / (time.monotonic() - t0)
        finally:
            producer.close()
        # Until the newest reading's zone state is back (or the drain runs out).
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and _backlog(box) > 0:
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        if not parent.poll(60):
            return {"error": "the tailing consumer sent nothing back in 60 s"}
        seen = parent.recv()
    finally:
        stop.set()
        tail.join(10)
        if tail.is_alive():
            tail.kill()
    first: dict[tuple[str, int], float] = {}
    alerts: dict[tuple[str, int], float] = {}
    for what, zone, ts, arrived in seen:
        target = first if what == "state" else alerts
        target.setdefault((zone, ts), arrived)
    # The first second is the ramp (the producer's connection, the first fetches).
    ramp = min(load.sent.values(), default=0) + 1.0
    lat = [(first[k] - t) * 1000 for k, t in load.sent.items() if k in first and t >= ramp]
    alert_lat = [(alerts[k] - t) * 1000 for k, t in load.probes.items() if k in alerts]
    unmatched = sum(1 for k in load.sent if k not in first)
    return {
        "target_readings_per_s": rate,
        "achieved_readings_per_s": round(achieved, 1),
        "seconds": seconds,
        "readings": sent,
        "unmatched_readings": unmatched,
        "zone_state_latency_ms_p50": _round(_percentile(lat, 0.5)),
        "zone_state_latency_ms_p99": _round(_percentile(lat, 0.99)),
        "zone_state_latency_ms_max": _round(max(lat, default=None)),
        "samples": len(lat),
        "alert_latency_ms_median": _round(statistics.median(alert_lat) if alert_lat else None),
        "alert_latency_ms_runs": [round(x, 1) for x in alert_lat],
        "alert_probes": len(load.probes),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _backlog(box: Sandbox) -> float:
    """The worker's uncommitted input messages (``crowdsafe_consumer_lag_messages``)."""
    from streams.worker.metrics import samples, scrape

    try:
        text = scrape(box.web_port, timeout=5, names=["crowdsafe_consumer_lag_messages"])
    except OSError:
        return 0.0
    readings = box.topic("readings")
    return sum(
        float(s.value)
        for s in samples(text, "crowdsafe_consumer_lag_messages")
        if s.name == "crowdsafe_consumer_lag_messages" and s.labels.get("topic") == readings
    )


def _capacity(results: dict | None, quick: bool) -> tuple[float | None, str]:
    """One worker's readings/s with one reading per message: from this run's pipeline suite,
    else measured now on 5,000 readings."""
    from_pipeline = ((results or {}).get("pipeline") or {}).get("one_reading_per_message") or {}
    rate = from_pipeline.get("pipeline_worker_readings_per_s_median")
    if rate:
        return float(rate), "pipeline suite of this run"
    from streams.bench.pipeline import _one_layout, _readings

    readings = _readings(5_000)
    single = [(r["zone_id"].encode(), json.dumps({"v": 1, **r}).encode()) for r in readings]
    rate = _one_layout(single, 5_000, 1, "capacity for the latency suite")[
        "pipeline_worker_readings_per_s_median"
    ]
    return (float(rate) if rate else None), "measured by the latency suite (5,000 readings)"


def run(quick: bool, results: dict | None = None) -> dict:
    seconds = 8.0 if quick else 30.0
    settings = get_settings()
    site = load_site(settings.site)
    capacity, capacity_from = _capacity(results, quick)
    half = capacity / 2 if capacity else None
    levels: list[tuple[str, float | None, str | None]] = [
        ("idle", IDLE_PER_S, None),
        ("at_1000_per_s", 1000.0, None),
        ("at_half_capacity", half, None if half else "capacity not measured"),
        (
            "at_10000_per_s",
            TARGET_PER_S if half and half >= TARGET_PER_S else None,
            None
            if half and half >= TARGET_PER_S
            else f"capacity {capacity or 0:,.0f}/s: half of it below 10,000/s (latency near "
            "saturation only measures the queue)",
        ),
    ]
    out: dict = {"capacity_readings_per_s": capacity, "capacity_from": capacity_from}
    with tempfile.TemporaryDirectory(prefix="crowdsafe-bench-latency-") as tmp:
        box = Sandbox(settings.kafka_bootstrap, Path(tmp))
        try:
            box.ensure_topics()
            box.start_worker(timeout=120)
            load = _Load(site)
            zones = list(load.zones)
            # Warm up: every zone has a state and the worker has done its first batches.
            _level(box, load, 50.0, 3.0, [])
            progress = Progress("bench latency", len(levels))
            for name, rate, reason in levels:
                if rate is None:
                    out[name] = None
                    out[f"{name}_reason"] = reason
                else:
                    probes, zones = zones[:ALERT_PROBES], zones[ALERT_PROBES:]
                    out[name] = _level(box, load, rate, seconds, probes)
                progress.step()
            progress.done()
        finally:
            box.stop_worker()
            box.delete_topics()
    out["note"] = (
        "one reading per message (the edge producer: acks=all, linger 20 ms); latency from "
        "handing the reading to the producer to an outside consumer (another process) reading "
        "its zone-state record; alert: a reading over the critical density to its raised "
        "incident on the alerts topic; the producer, the consumer and the worker share the "
        "machine's cores"
    )
    return out
