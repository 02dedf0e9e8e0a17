"""Every reading a worker was given, accounted for: applied + duplicate + dead-lettered against
produced, with a bounded wait that ends in a diagnosis instead of a hang.

Not a suite (``crowdsafe bench`` skips modules whose name starts with ``_``): the ``pipeline``,
``latency`` and ``scaleout`` suites and ``tests/worker/test_accounting_kafka.py`` use it.

The terms come from the worker's own counters (``/metrics``, one incarnation):
``crowdsafe_readings_total`` (applied), ``crowdsafe_readings_duplicate_total`` (dropped as
re-deliveries by ``seq``) and ``crowdsafe_readings_rejected_total`` (dead letters: one per
rejected message, or per reading refused by the event-time policy). When the sum stops moving
before it reaches what was produced, the wait ends and says why: each partition's end offset
against the group's committed offset (lag 0 with readings missing means the consumer moved
past them), the consumer's offset gaps, and the worker's log tail.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field

from streams.testing import Sandbox


@dataclass
class Accounting:
    """What one worker did with ``produced`` readings, and how the wait for it ended."""

    produced: int
    # Accounted at the wait's first look: what a worker did before it was watched (a rate is
    # over the readings after it).
    first_seen: int | None = None
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    outcome: str = "waiting"  # accounted | stalled | timeout | worker exited | no metrics
    waited_s: float = 0.0
    offset_gaps: dict[str, int] = field(default_factory=dict)
    partitions: list[dict] = field(default_factory=list)  # partition, end, committed, lag
    log_tail: str = ""

    @property
    def accounted(self) -> int:
        return self.applied + self.duplicates + self.dead_lettered

    @property
    def rate(self) -> float | None:
        """Readings/s accounted from the first look to the last reading; None unless every
        reading was, or when the worker was done before the first look."""
        if self.outcome != "accounted" or not self.waited_s or self.first_seen is None:
            return None
        if self.first_seen >= self.produced:
            return None
        return (self.produced - self.first_seen) / self.waited_s

    @property
    def ratio(self) -> float:
        """Accounted over produced: 1 means nothing lost (more: something counted twice).

        >>> Accounting(100, applied=90, duplicates=6, dead_lettered=4).ratio
        1.0
        """
        return round(self.accounted / self.produced, 6) if self.produced else 1.0

    def diagnosis(self) -> str:
        """One paragraph on what is missing and where the consumer stands.

        >>> a = Accounting(50, applied=40, outcome="stalled", waited_s=31.0,
        ...                partitions=[{"partition": 0, "end": 9, "committed": 9, "lag": 0}])
        >>> print(a.diagnosis())  # doctest: +NORMALIZE_WHITESPACE
        stalled after 31 s: 40 of 50 readings accounted (40 applied, 0 duplicate, 0 dead-lettered;
        10 missing); partitions (end/committed/lag): 0: 9/9/0; consumer lag 0 with readings
        missing: the consumer moved past them
        """
        missing = self.produced - self.accounted
        text = (
            f"{self.outcome} after {self.waited_s:.0f} s: {self.accounted} of {self.produced} "
            f"readings accounted ({self.applied} applied, {self.duplicates} duplicate, "
            f"{self.dead_lettered} dead-lettered; "
            + (f"{missing} missing)" if missing >= 0 else f"{-missing} too many)")
        )
        if self.partitions:
            parts = ", ".join(
                f"{p['partition']}: {p['end']}/{p['committed']}/{p['lag']}" for p in self.partitions
            )
            text += f"; partitions (end/committed/lag): {parts}"
            if missing > 0 and all(p["lag"] == 0 for p in self.partitions):
                text += "; consumer lag 0 with readings missing: the consumer moved past them"
        if any(self.offset_gaps.values()):
            text += f"; offset gaps {self.offset_gaps}"
        return text

    def as_dict(self, log_lines: int = 0) -> dict:
        out = {
            "produced": self.produced,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "accounted_ratio": self.ratio,
            "accounted_at_first_look": self.first_seen,
            "outcome": self.outcome,
            "waited_s": round(self.waited_s, 1),
            "offset_gaps": self.offset_gaps,
            "partitions": self.partitions,
        }
        if self.outcome != "accounted":
            out["diagnosis"] = self.diagnosis()
            if log_lines:
                out["worker_log_tail"] = self.log_tail.splitlines()[-log_lines:]
        return out


def offset_gaps(box: Sandbox) -> dict[str, int]:
    """``crowdsafe_consumer_offset_gaps_total`` by outcome (sought, accepted)."""
    url = f"http://127.0.0.1:{box.web_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - loopback
    out: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("crowdsafe_consumer_offset_gaps_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = int(float(line.rsplit(" ", 1)[1]))
    return out


def partitions(box: Sandbox, topic_name: str = "readings") -> list[dict]:
    """Per partition of the sandbox's topic: end offset, the app's committed offset, lag."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    from streams.config.kafka import client_kwargs

    kwargs = client_kwargs(box.settings())
    topic = box.topic(topic_name)
    consumer = KafkaConsumer(**kwargs, enable_auto_commit=False)
    admin = KafkaAdminClient(**kwargs, request_timeout_ms=10_000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(tps)
        group = box.env["CROWDSAFE_APP_ID"]
        committed = {
            tp: meta.offset for tp, meta in admin.list_consumer_group_offsets(group).items()
        }
    finally:
        admin.close()
        consumer.close()
    return [
        {
            "partition": tp.partition,
            "end": ends[tp],
            "committed": committed.get(tp),
            "lag": ends[tp] - max(committed.get(tp) or 0, 0),
        }
        for tp in tps
    ]


def account(
    boxes: list[Sandbox] | Sandbox,
    produced: int,
    timeout_s: float = 300,
    stall_s: float = 30,
    interval_s: float = 0.05,
    progress=None,
    baseline: list[dict[str, float]] | None = None,
) -> Accounting:
    """Wait until the workers of ``boxes`` (summed) account for ``produced`` readings, until the
    sum has not moved for ``stall_s`` seconds, or ``timeout_s``; whichever comes first. Never
    raises for a worker that stops answering: that is the outcome. ``progress``: a
    :class:`streams.ops.progress.Progress` stepped as readings are accounted. ``baseline``:
    each worker's :meth:`Sandbox.metrics` before these readings (counted from there)."""
    boxes = boxes if isinstance(boxes, list) else [boxes]
    acc = Accounting(produced)
    start = last_change = time.monotonic()
    last = -1
    while True:
        now = time.monotonic()
        acc.waited_s = now - start
        if any(b.proc is not None and b.proc.poll() is not None for b in boxes):
            acc.outcome = "worker exited"
            break
        try:
            counts = [b.metrics() for b in boxes]
        except OSError:
            counts = None
        if counts is not None and baseline is not None:
            counts = [
                {k: v - b.get(k, 0.0) for k, v in m.items()}
                for m, b in zip(counts, baseline, strict=True)
            ]
        if counts is not None:
            acc.applied = int(sum(m["readings"] for m in counts))
            acc.duplicates = int(sum(m["duplicates"] for m in counts))
            acc.dead_lettered = int(sum(m["rejected"] for m in counts))
            if acc.first_seen is None:
                acc.first_seen, start = acc.accounted, time.monotonic()
            if acc.accounted != last:
                if progress is not None:
                    progress.step(acc.accounted - max(last, 0))
                last, last_change = acc.accounted, now
        if acc.accounted >= produced:
            acc.outcome = "accounted"
            break
        if now - last_change > stall_s:
            acc.outcome = "stalled" if counts is not None else "no metrics"
            break
        if now - start > timeout_s:
            acc.outcome = "timeout"
            break
        time.sleep(interval_s)
    acc.waited_s = time.monotonic() - start
    if acc.outcome != "accounted":
        _explain(acc, boxes)
    return acc


def _explain(acc: Accounting, boxes: list[Sandbox]) -> None:
    """Fill in where the consumer stands and the log tail (best effort: a diagnosis must not
    fail the bench it explains)."""
    try:
        acc.partitions = partitions(boxes[0])
    except Exception as exc:  # noqa: BLE001
        acc.partitions = [{"partition": None, "end": None, "committed": None, "lag": repr(exc)}]
    gaps: dict[str, int] = {}
    for box in boxes:
        try:
            for k, v in offset_gaps(box).items():
                gaps[k] = gaps.get(k, 0) + v
        except OSError:
            pass
    acc.offset_gaps = gaps
    tails = []
    for box in boxes:
        try:
            tails.append(box.log_tail(40))
        except OSError:
            pass
    acc.log_tail = "\n".join(tails)
