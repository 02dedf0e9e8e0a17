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
from dataclasses import dataclass, field

from streams.testing import Sandbox
from streams.worker.metrics import samples, scrape


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
    # Input messages none of whose readings has a zone-state record (lost, or dead-lettered).
    unhandled: list[dict] = field(default_factory=list)
    log_tail: str = ""

    @property
    def accounted(self) -> int:
        return self.applied + self.duplicates + self.dead_lettered

    @property
    def rate(self) -> float | None:
        """Readings/s accounted from the first look to the last reading; None unless every
        reading was, or when the worker had done more than half of them before the first look
        (the rest is too short to time: the look comes up to half a second after the worker is
        ready, and a quick batched run once timed 1,280 readings left over 0.2 s, 6,300/s).

        >>> Accounting(1000, applied=1000, outcome="accounted", first_seen=200, waited_s=2.0).rate
        400.0
        >>> Accounting(1000, applied=1000, outcome="accounted", first_seen=600, waited_s=2.0).rate
        """
        if self.outcome != "accounted" or not self.waited_s or self.first_seen is None:
            return None
        if self.first_seen > self.produced / 2:
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
        ...                partitions=[{"partition": 0, "end": 9, "committed": 9, "lag": 0}],
        ...                unhandled=[{"partition": 0, "offset": 4, "readings": 10}])
        >>> print(a.diagnosis())  # doctest: +NORMALIZE_WHITESPACE
        stalled after 31 s: 40 of 50 readings accounted (40 applied, 0 duplicate, 0 dead-lettered;
        10 missing); partitions (end/committed/lag): 0: 9/9/0; consumer lag 0 with readings
        missing: their messages were consumed and committed without being handled; messages
        with no zone state (partition@offset): 0@4
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
                text += (
                    "; consumer lag 0 with readings missing: their messages were consumed and "
                    "committed without being handled"
                )
        if self.unhandled:
            shown = ", ".join(f"{m['partition']}@{m['offset']}" for m in self.unhandled[:10])
            more = len(self.unhandled) - 10
            text += f"; messages with no zone state (partition@offset): {shown}" + (
                f" and {more} more" if more > 0 else ""
            )
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
        if self.unhandled:
            out["messages_without_zone_state"] = self.unhandled[:50]
        if self.outcome != "accounted":
            out["diagnosis"] = self.diagnosis()
            if log_lines:
                out["worker_log_tail"] = self.log_tail.splitlines()[-log_lines:]
        return out


def offset_gaps(box: Sandbox) -> dict[str, int]:
    """``crowdsafe_consumer_offset_gaps_total`` by outcome (sought, accepted)."""
    name = "crowdsafe_consumer_offset_gaps_total"
    return {s.labels["outcome"]: int(s.value) for s in samples(scrape(box.web_port, names=[name]))}


def partitions(box: Sandbox, topic_name: str = "readings") -> list[dict]:
    """Per partition of the sandbox's topic: end offset, the app's committed offset, lag."""
    from streams.dispatch import clients

    # A consumer of the app's group that never subscribes: it reads the group's committed
    # offsets without joining the group (the workers keep their partitions).
    consumer = clients.consumer(box.settings(), group=box.env["CROWDSAFE_APP_ID"])
    try:
        tps = clients.partitions(consumer, box.topic(topic_name))
        ends = consumer.end_offsets(tps)
        committed = clients.committed(consumer, tps)
    except clients.TopicMissing:
        return []  # nothing to show: the diagnosis leaves the partitions out
    finally:
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


def unhandled(box: Sandbox, idle_s: float = 3.0) -> list[dict]:
    """Input messages none of whose readings has a record on ``zone-state`` (one per zone per
    distinct event time): where the missing readings were. Both topics read from the start
    until nothing new comes for ``idle_s``."""
    import json

    def everything(topic: str) -> list:
        return box.consume(box.topic(topic), until=lambda r: False, timeout=120, idle_s=idle_s)

    published = set()
    for record in everything("zone-state"):
        body = json.loads(record.value)
        published.add((body.get("zone_id"), body.get("ts")))
    out = []
    for record in everything("readings"):
        try:
            body = json.loads(record.value)
            readings = body.get("readings", [body])
            keys = {(r.get("zone_id"), r.get("ts")) for r in readings}
        except (ValueError, AttributeError):
            continue  # not a reading: dead-lettered, counted there
        if not keys & published:
            out.append({"partition": record.partition, "offset": record.offset,
                        "readings": len(readings)})  # fmt: skip
    return out


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
    try:
        acc.unhandled = unhandled(boxes[0])
    except Exception as exc:  # noqa: BLE001
        acc.unhandled = [{"partition": None, "offset": None, "error": repr(exc)}]
    tails = []
    for box in boxes:
        try:
            tails.append(box.log_tail(40))
        except OSError:
            pass
    acc.log_tail = "\n".join(tails)
