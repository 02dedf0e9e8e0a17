"""Recovery times of the worker under faults, on the real broker (``KAFKA_BOOTSTRAP``).

* ``restart_resume_s``: SIGKILL a worker, start it again (same worker id: static membership),
  produce one new reading right after the start, and time from the start to that reading's
  zone-state record (median of 3, 1 with ``--quick``).
* ``failover_s``: two workers share the partitions; SIGKILL the one holding a zone, produce a
  reading of that zone every 0.2 s, and time from the kill to the survivor's zone-state
  record of it (session timeout, rebalance, changelog recovery).
* ``sigterm_stop_s``: SIGTERM to exit of a worker with the broker up.

Every wait has a deadline; a run that misses one reports ``null`` and a diagnosis in
``problems`` instead of hanging.
"""

from __future__ import annotations

import json
import signal
import statistics
import tempfile
import time
from pathlib import Path

from streams.config.settings import get_settings
from streams.ops import procs
from streams.ops.partitioning import partition_of
from streams.testing import Sandbox
from streams.testing_faults import kill, partner, terminate, wait_for

ZONE, SOURCE = "ticket-hall", "cam-ticket-hall"
DEADLINE_S = 90.0


class _Tail:
    """Zone-state records of one zone from now on (a plain consumer at the end of the topic)."""

    def __init__(self, box: Sandbox) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(
            bootstrap_servers=box.bootstrap, enable_auto_commit=False, consumer_timeout_ms=100
        )
        n = int(box.env["CROWDSAFE_TOPIC_PARTITIONS"])
        tp = TopicPartition(box.topic("zone-state"), partition_of(ZONE.encode(), n))
        self.consumer.assign([tp])
        self.consumer.seek_to_end(tp)
        self.consumer.position(tp)

    def seen(self, ts: int) -> bool:
        return any(json.loads(m.value)["ts"] == ts for m in self.consumer)

    def close(self) -> None:
        self.consumer.close()


def _send(box: Sandbox, producer, seq: int) -> int:
    ts = int(time.time() * 1000)
    producer.send({"source_id": SOURCE, "kind": "camera", "zone_id": ZONE, "ts": ts,
                   "seq": seq, "count": 100})  # fmt: skip
    producer.flush()
    return ts


def _restart_resume(box: Sandbox, producer, seq: int, problems: list[str]) -> float | None:
    tail = _Tail(box)
    try:
        kill(box)
        start = time.monotonic()
        box.start_worker(timeout=DEADLINE_S)
        ts = _send(box, producer, seq)
        if wait_for(lambda: tail.seen(ts), DEADLINE_S, interval=0):
            return time.monotonic() - start
        problems.append(f"restart: no zone state {DEADLINE_S:g} s after start:\n{box.log_tail(15)}")
        return None
    finally:
        tail.close()


def _failover(box: Sandbox, tmp: Path, producer, seq: int, problems: list[str]) -> float | None:
    other = partner(box, tmp / "second")
    try:
        other.start_worker(timeout=DEADLINE_S)
        # Both are ready (the group has settled): whoever publishes a new reading of the zone
        # owns it (a worker's view keeps zones it served before a rebalance, so match the ts).
        ts = _send(box, producer, seq)
        owner = wait_for(
            lambda: next((b for b in (box, other) if _view_ts(b) == ts), None), DEADLINE_S
        )
        if owner is None:
            problems.append(f"failover: no worker published the reading at {ts}")
            return None
        survivor = other if owner is box else box
        tail = _Tail(box)
        try:
            kill(owner)
            start = time.monotonic()
            deadline = start + DEADLINE_S
            while time.monotonic() < deadline:
                seq += 1
                ts = _send(box, producer, seq)
                if wait_for(lambda ts=ts: tail.seen(ts), 0.2, interval=0):
                    return time.monotonic() - start
            problems.append(f"failover: no zone state {DEADLINE_S:g} s after the kill:\n"
                            f"{survivor.log_tail(15)}")  # fmt: skip
            return None
        finally:
            tail.close()
    finally:
        other.stop_worker()


def _view_ts(box: Sandbox) -> int | None:
    """The event time of the zone's newest state in this worker's own view (``/api/zones``)."""
    import urllib.request

    url = f"http://127.0.0.1:{box.web_port}/api/zones"
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())  # noqa: S310 - loopback
    return next((z["ts"] for z in body["zones"] if z["zone_id"] == ZONE), None)


def run(quick: bool = False) -> dict:
    settings = get_settings()
    rounds = 1 if quick else 3
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="crowdsafe-bench-faults-") as tmp_dir:
        tmp = Path(tmp_dir)
        box = Sandbox(settings.kafka_bootstrap, tmp)
        box.ensure_topics()
        producer = box.producer()
        seq = time.time_ns() // 1000
        resumes: list[float] = []
        stops: list[float] = []
        failover = None
        try:
            box.start_worker(timeout=DEADLINE_S)
            for _ in range(rounds):
                seq += 1
                took = _restart_resume(box, producer, seq, problems)
                if took is not None:
                    resumes.append(took)
            for _ in range(rounds):
                took = terminate(box, hang_guard_s=DEADLINE_S)
                if took is None:
                    problems.append(f"sigterm: still running {DEADLINE_S:g} s later")
                else:
                    stops.append(took)
                box.start_worker(timeout=DEADLINE_S)
            seq += 10
            failover = _failover(box, tmp, producer, seq, problems)
        except Exception as exc:  # noqa: BLE001 - a diagnosis, never a hang or a traceback
            problems.append(f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            producer.close()
            box.stop_worker()
            if box.proc is not None and box.proc.poll() is None:
                procs.signal_group(box.proc.pid, signal.SIGKILL)

    def median(xs: list[float]) -> float | None:
        return round(statistics.median(xs), 2) if xs else None

    return {
        "restart_resume_s": median(resumes),
        "restart_resume_runs_s": [round(x, 2) for x in resumes],
        "failover_s": None if failover is None else round(failover, 2),
        "sigterm_stop_s": median(stops),
        "session_timeout_s": settings.session_timeout_s,
        "problems": problems,
    }
