"""Fuzz the live worker: thousands of malformed, truncated, oversized, wrongly typed and hostile
messages, interleaved with valid readings, through a real ``crowdsafe worker`` on the broker.

The plan is drawn by hypothesis (``streams/testing_fuzz.py``: generation only, no shrinking)
and every message's fate is known by construction. Then: the worker never stops, every hostile
message has exactly one dead letter (found by its partition and offset, or by its unique key
when sent to the wrong partition and re-routed) with a reason of its class and the original
bytes, every late or future reading its own, and applied + duplicates + dead letters = produced.

``CROWDSAFE_FUZZ_MESSAGES`` hostile messages (default 5,000; ``make test-full``: 100,000) and
about half as many valid ones; ``CROWDSAFE_FUZZ_SEED`` picks the plan.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter, defaultdict

import pytest
from kafka.partitioner.default import murmur2

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.testing_fuzz import (
    BIG_CASES,
    MAX_KEPT,
    MESSAGE_CLASSES,
    REASON_PREFIX,
    check_dead_letter,
    draw_plan,
)

pytestmark = pytest.mark.kafka

HOSTILE = int(os.environ.get("CROWDSAFE_FUZZ_MESSAGES", "5000"))
SEED = int(os.environ.get("CROWDSAFE_FUZZ_SEED", "20260"))
STALL_S = 90  # no counter moved for this long: the worker is stuck, say what is missing


def _progress(box, want: dict, deadline_s: float) -> dict:
    """Poll the worker's counters until they account for every produced reading and message;
    fail with a diagnosis when the worker dies, stalls or runs out of time."""
    last, moved, start = None, time.monotonic(), time.monotonic()
    while True:
        if box.proc.poll() is not None:
            pytest.fail(f"worker exited {box.proc.returncode}; counters {last}:\n{box.log_tail()}")
        now = box.metrics()
        done = now.get("readings", 0) + now.get("duplicates", 0) + now.get("rejected", 0)
        if done >= want["produced"] and now.get("rerouted", 0) >= want["rerouted"]:
            return now
        if now != last:
            last, moved = now, time.monotonic()
        if time.monotonic() - moved > STALL_S or time.monotonic() - start > deadline_s:
            pytest.fail(
                f"worker stuck at {done:.0f} of {want['produced']} readings/messages accounted "
                f"for: counters {now}, expected {want}:\n{box.log_tail()}"
            )
        time.sleep(1)


def test_hostile_messages_are_dead_lettered_and_valid_readings_applied(pipeline):
    t0 = time.monotonic()
    site = load_site(bundled_site())
    plan = draw_plan(site, HOSTILE, big=max(12, HOSTILE // 2500), seed=SEED)
    want = plan.totals()
    drawn_s = time.monotonic() - t0

    pipeline.start_worker()
    t1 = time.monotonic()
    with pipeline.producer() as producer:
        warm = len(site.zones)  # one reading per zone first: every zone then has a watermark
        for m in plan.messages[:warm]:
            producer.send_raw(m.key, m.value)
        producer.flush()
        _progress(pipeline, {"produced": warm, "rerouted": 0}, deadline_s=120)
        futures = []
        for m in plan.messages[warm:]:
            partition = None
            if m.misplaced:  # where a partitioner other than Kafka's default could put it
                partition = 1 - (murmur2(m.key) & 0x7FFFFFFF) % 2
            futures.append(producer.send_raw(m.key, m.value, partition))
        producer.flush()
        where = [f.get(timeout=60) for f in futures]
    produced_s = time.monotonic() - t1
    counters = _progress(pipeline, want, deadline_s=300 + want["messages"] / 100)
    processed_s = time.monotonic() - t1

    dead = pipeline.consume(
        pipeline.topic("deadletter"), lambda r: len(r) >= want["dead_letters"], idle_s=20
    )
    zones = {m.zone for m in plan.messages if m.applied}
    seen: set[str] = set()
    read = [0]

    def every_zone(records: list) -> bool:
        seen.update(json.loads(r.value)["zone_id"] for r in records[read[0] :])
        read[0] = len(records)
        return seen >= zones

    pipeline.consume(pipeline.topic("zone-state"), every_zone, idle_s=10)

    # The worker is alive and well.
    assert pipeline.proc.poll() is None, pipeline.log_tail()
    assert pipeline.health() == 200

    # The counts add up: applied + duplicates + dead-lettered = produced, class by class.
    assert counters.get("readings", 0) == want["applied"]
    assert counters.get("duplicates", 0) == want["duplicates"]
    assert counters.get("rerouted", 0) == want["rerouted"]
    rejected = {k.removeprefix("rejected:"): v for k, v in counters.items() if ":" in k}
    assert rejected == {k.removeprefix("dl:"): v for k, v in want.items() if k.startswith("dl:")}
    assert len(dead) == want["dead_letters"]

    # Every hostile message has exactly one dead letter, of its class, with its bytes.
    by_offset, by_key = defaultdict(list), defaultdict(list)
    for record in dead:
        d = json.loads(record.value)
        assert d["topic"] == pipeline.topic("readings") and d["reason"], d
        if d["key_b64"] and base64.b64decode(d["key_b64"]).startswith(b"fz-mis-"):
            by_key[base64.b64decode(d["key_b64"])].append(d)
        else:
            by_offset[(d["partition"], d["offset"])].append(d)
    problems = []
    for m, meta in zip(plan.messages[warm:], where, strict=True):
        mine = (
            by_key.pop(m.key, [])
            if m.misplaced and m.fate != "valid"
            else by_offset.pop((meta.partition, meta.offset), [])
        )
        if m.fate in MESSAGE_CLASSES:
            if len(mine) != 1:
                problems.append(f"{m.case}: {len(mine)} dead letters")
            else:
                problems += [f"{m.case}: {p}" for p in check_dead_letter(m, mine[0])]
        else:
            got = Counter(d["reason"].split(":")[0] for d in mine)
            if got != m.reading_dead:
                problems.append(f"{m.case}: dead letters {dict(got)}, want {dict(m.reading_dead)}")
            for d in mine:
                if not d["reason"].startswith(REASON_PREFIX["late"] + REASON_PREFIX["future"]):
                    problems.append(f"{m.case}: reason {d['reason'][:80]!r}")
    assert problems == [], problems[:20]
    assert not by_offset and not by_key  # no dead letter for anything else

    # Every zone with a valid reading has a zone state.
    assert seen >= zones, zones - seen

    big = [m for m in plan.messages if m.case.startswith("big/")]
    assert {m.case for m in big} == set(BIG_CASES)  # each crash of before is in the mix
    for m in big:  # ~1 MB originals: cut in their dead letters, which say how long they were
        if m.case == "big/huge-key":  # its size is in the key (0.3-0.5 MB), the value may be small
            assert len(m.key or b"") > 100_000
        else:
            assert len(m.value or b"") > MAX_KEPT
    print(
        f"\nfuzz: seed {SEED}, {plan.hostile} hostile of {want['messages']} messages "
        f"({len(big)} of 0.75-1 MB), {want['produced']} readings and messages accounted for: "
        f"{want['applied']} applied, {want['duplicates']} duplicates, "
        f"{want['dead_letters']} dead letters {rejected}; {want['rerouted']} re-routed; "
        f"drawn in {drawn_s:.0f} s, produced in {produced_s:.0f} s, processed in "
        f"{processed_s:.0f} s ({want['messages'] / processed_s:.0f} messages/s)"
    )
