"""Scale-out: two workers sharing the partitions against one, on the same readings.

Each run has fresh topics with 4 partitions (the default ``CROWDSAFE_TOPIC_PARTITIONS``), so
two workers hold two each. The workers start on empty topics and wait until the group has
settled (each holds its share of the readings partitions, by its own consumer-lag series);
then the readings are produced, twenty per message (producing them takes a fraction of the
workers' time, so the producer is not what is measured), and the run is timed from the first
message produced to every reading accounted for (applied + duplicate + dead-lettered, summed
over the workers). CPU seconds of each worker process come from ``/proc/<pid>/stat``: on this
2-core machine, shared with the producer, the broker and other work, that says what limits
the speedup.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from streams.bench._accounting import account
from streams.bench.pipeline import _batched, _readings
from streams.config.settings import get_settings
from streams.ops.partitioning import partition_of
from streams.testing import Sandbox
from streams.testing_faults import partner

PARTITIONS = 4
WAIT_S = 300.0
STALL_S = 30.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3; utime, stime are 14, 15 (1-based in proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process), /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _held(box: Sandbox) -> set[int]:
    """Readings partitions this worker was last given: the readings row of the newest
    "Topic Partition Set" table in its log (``{0-1}``, ``{0, 2}``, ``{0-1, 3}``). Faust's own
    account; a lag series appears only once a partition has messages.

    >>> _parse_set("{0-1, 3}")
    {0, 1, 3}
    """
    topic = re.escape(box.topic("readings"))
    rows = re.findall(rf"^\| {topic} +\| (\{{[^}}]*\}}) +\|", _log(box), re.M)
    return _parse_set(rows[-1]) if rows else set()


def _parse_set(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.strip("{}").split(","):
        lo, _, hi = part.strip().partition("-")
        if lo:
            out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def _log(box: Sandbox) -> str:
    return (box.tmp / f"worker-{box.starts}.log").read_text()


def _settled(boxes: list[Sandbox], timeout_s: float = 90) -> bool:
    """Until the workers hold disjoint shares covering every partition, steady for 3 s (the
    group's last rebalance done)."""
    deadline = time.monotonic() + timeout_s
    steady_since = None
    while time.monotonic() < deadline:
        shares = [_held(b) for b in boxes]
        ok = all(shares) and sum(map(len, shares)) == PARTITIONS
        ok = ok and set().union(*shares) == set(range(PARTITIONS))
        if ok:
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 3:
                return True
        else:
            steady_since = None
        time.sleep(0.5)
    return False


def _run(workers: int, messages: list[tuple[bytes, bytes]], n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="crowdsafe-bench-scaleout-") as tmp_dir:
        tmp = Path(tmp_dir)
        extra = {"CROWDSAFE_TOPIC_PARTITIONS": str(PARTITIONS)}
        box = Sandbox(get_settings().kafka_bootstrap, tmp / "w1", extra_env=extra)
        (tmp / "w1").mkdir()
        boxes = [box]
        try:
            box.ensure_topics()
            box.start_worker(timeout=120)
            if workers == 2:
                boxes.append(partner(box, tmp / "w2"))
                boxes[1].start_worker(timeout=120)
            if not _settled(boxes):
                return {"error": f"partitions not shared out: {[sorted(_held(b)) for b in boxes]}"}
            shares = [sorted(_held(b)) for b in boxes]
            cpu0 = [_cpu_s(b.proc.pid) for b in boxes]
            busy0 = _machine_busy_s()
            start = time.monotonic()
            with box.producer() as producer:
                for key, value in messages:
                    producer.send_raw(key, value)
            produced_s = time.monotonic() - start
            acc = account(boxes, n, timeout_s=WAIT_S, stall_s=STALL_S)
            wall = time.monotonic() - start
            cpu = [_cpu_s(b.proc.pid) - c for b, c in zip(boxes, cpu0, strict=True)]
            busy = _machine_busy_s() - busy0
            per_worker = [int(b.metrics()["readings"]) for b in boxes]
        finally:
            for b in boxes:
                b.stop_worker()
            box.delete_topics()
    return {
        "workers": workers,
        "readings_per_s": round(n / wall) if acc.outcome == "accounted" else None,
        "wall_s": round(wall, 2),
        "producing_s": round(produced_s, 2),
        "partitions_held": shares,
        "readings_applied_per_worker": per_worker,
        "worker_cpu_s": [round(c, 2) for c in cpu],
        # CPU seconds per wall second: 1.0 is one core kept busy.
        "worker_cores_used": [round(c / wall, 2) for c in cpu],
        # The whole machine meanwhile: the workers, the producer, the broker, everyone else.
        "machine_cores_busy": round(busy / wall, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "accounting": acc.as_dict(log_lines=20),
    }


def run(quick: bool) -> dict:
    n = 40_000 if quick else 100_000
    repeats = 1 if quick else 3
    readings = _readings(n)
    messages = _batched(readings, 20)
    split = [0] * PARTITIONS
    for r in readings:
        split[partition_of(r["zone_id"].encode(), PARTITIONS)] += 1
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(repeats):
        for workers in (1, 2):  # interleaved: drifting machine load hits both alike
            runs[workers].append(_run(workers, messages, n))

    def median_rate(rs: list[dict]) -> float | None:
        rates = [r["readings_per_s"] for r in rs if r.get("readings_per_s")]
        return statistics.median(rates) if rates else None

    one, two = median_rate(runs[1]), median_rate(runs[2])
    out: dict = {
        "readings": n,
        "messages": len(messages),
        "readings_per_partition": split,
        "runs": repeats,
        "one_worker_readings_per_s_median": one and round(one),
        "two_workers_readings_per_s_median": two and round(two),
        "two_worker_speedup": round(two / one, 2) if one and two else None,
        "cores": os.cpu_count(),
        "one_worker": runs[1],
        "two_workers": runs[2],
    }
    shares = [r["partitions_held"] for r in runs[2] if "partitions_held" in r]
    if shares:
        # The best two workers can do when one of them holds the busier partitions.
        busiest = max(sum(split[p] for p in held) for held in shares[0])
        out["two_worker_speedup_bound_by_partition_split"] = round(n / busiest, 2)
    if out["two_worker_speedup"] is None:
        errors = [r.get("error") or r["accounting"].get("diagnosis") for r in runs[1] + runs[2]]
        out["two_worker_speedup_reason"] = "; ".join(e for e in errors if e) or "not measured"
    out["note"] = (
        "twenty readings per message; timed from the first message produced to every reading "
        "accounted; worker_cores_used: CPU seconds per wall second of each worker process, "
        "machine_cores_busy: of every process on the machine (cores: the most there is)"
    )
    return out
