"""Counting what a worker does under faults: the harness behind ``tests/faults/`` and the
``faults`` bench suite.

The proof is by counting on the topics, not on the worker's counters (which restart at zero
with every incarnation): a known story of readings is produced, the same readings are run
through :class:`streams.zone.processor.ZoneProcessor` in process (deterministic: results do
not depend on batching), and then

* every (zone, event time) produced must have a ``zone-state`` record (one per zone per
  distinct event time; more than one is a duplicate), and
* every alert transition (``alert_id``, ``state``) of the uninterrupted run must be on the
  ``alerts`` topic and reach the dispatch feed; repeats are counted as duplicates.

Nothing runs at import time; every wait has a deadline.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from streams.ops import procs
from streams.testing import Sandbox, alert_transitions

SURGE_ZONE = "entrance-east"


def surge_story(site, start_ms: int, seed: int = 7) -> list[list[dict]]:
    """The surge scenario's ticks (readings per tick), from ``start_ms`` to the story's end."""
    from streams.edge.simulator import Simulator

    sim = Simulator(site, "surge", start_ms=start_ms, seed=seed)
    ticks = []
    for ts, readings in sim.ticks():
        if ts - start_ms > sim.length_s * 1000:
            break
        ticks.append(readings)
    return ticks


@dataclass
class Expected:
    """What an uninterrupted run of the readings produces."""

    readings: int
    zone_times: set[tuple[str, int]]  # one zone-state record each
    transitions: list[tuple[str, str]]  # (alert_id, state), in order


def expected(site, ticks: list[list[dict]]) -> Expected:
    """The readings run through the zone processor in process, one tick per batch."""
    import msgspec

    from streams.schema.payloads import Reading
    from streams.zone.processor import ZoneProcessor

    processor, states = ZoneProcessor(site), {}
    zone_times, transitions, n = set(), [], 0
    for readings in ticks:
        by_zone: dict[str, list] = {}
        for r in readings:
            by_zone.setdefault(r["zone_id"], []).append(msgspec.convert(r, Reading))
            n += 1
        for zone, rs in by_zone.items():
            out = processor.apply(zone, states.get(zone), rs)
            states[zone] = out.state
            zone_times |= {(zone, s.ts) for s in out.zone_states}
            transitions += [(a.alert_id, a.state) for a in out.alerts]
    return Expected(n, zone_times, transitions)


class PacedProducer:
    """Sends ticks in a thread, one batch message per zone per tick (as the simulator does),
    ``interval_s`` apart, with the edge producer (acks=all, idempotence). Errors reported by
    the client are kept, never raised in the thread."""

    def __init__(self, box: Sandbox, ticks: list[list[dict]], interval_s: float) -> None:
        self.box, self.ticks, self.interval_s = box, ticks, interval_s
        self.sent_ticks = 0
        self.sent_readings = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> PacedProducer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with self.box.producer() as producer:
                for readings in self.ticks:
                    if self._stop.is_set():
                        break
                    by_zone: dict[str, list[dict]] = {}
                    for r in readings:
                        by_zone.setdefault(r["zone_id"], []).append(r)
                    for batch in by_zone.values():
                        producer.send_batch(batch)
                    self.sent_ticks += 1
                    self.sent_readings += len(readings)
                    self._stop.wait(self.interval_s)
        except Exception as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(repr(exc))

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = 120) -> None:
        """Wait until every tick is sent and flushed (the producer closed)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(30)
            raise TimeoutError(f"producer still sending after {timeout}s ({self.sent_ticks})")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@dataclass
class Delivery:
    """What reached the topics, against what was expected."""

    readings_produced: int
    zone_states_expected: int
    zone_state_records: int
    zone_states_missing: list[tuple[str, int]]
    zone_state_duplicates: int
    # (zone, ts) published that the uninterrupted run never published: a zone judged at
    # another event time than its readings' (what a lost zone state usually turned into).
    zone_states_unexpected: list[tuple[str, int]]
    transitions_expected: int
    transition_records: int
    transitions_lost: list[tuple[str, str]]
    transition_duplicates: dict[tuple[str, str], int]
    transitions_unexpected: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "readings_produced": self.readings_produced,
            "zone_states_expected": self.zone_states_expected,
            "zone_state_records": self.zone_state_records,
            "zone_states_lost": len(self.zone_states_missing),
            "zone_state_duplicates": self.zone_state_duplicates,
            "zone_states_unexpected": len(self.zone_states_unexpected),
            "transitions_expected": self.transitions_expected,
            "transitions_lost": len(self.transitions_lost),
            "transition_duplicates": sum(self.transition_duplicates.values()),
            "transitions_unexpected": len(self.transitions_unexpected),
        }


def delivery(box: Sandbox, want: Expected, timeout: float = 120) -> Delivery:
    """Read ``zone-state`` and ``alerts`` from the start until everything expected is there (or
    ``timeout``), and count what is missing, repeated or unexpected."""
    wanted_times = want.zone_times
    wanted_transitions = set(want.transitions)

    def all_states(records: list[dict]) -> bool:
        return wanted_times <= {(r["zone_id"], r["ts"]) for r in records}

    def all_alerts(records: list[dict]) -> bool:
        found = alert_transitions(records)
        return wanted_transitions <= {(a["alert_id"], a["state"]) for a in found}

    states = box.read("zone-state", until=all_states, timeout=timeout)
    alerts = alert_transitions(box.read("alerts", until=all_alerts, timeout=timeout))
    seen_times = Counter((r["zone_id"], r["ts"]) for r in states)
    seen = Counter((a["alert_id"], a["state"]) for a in alerts)
    return Delivery(
        readings_produced=want.readings,
        zone_states_expected=len(wanted_times),
        zone_state_records=len(states),
        zone_states_missing=sorted(wanted_times - set(seen_times)),
        zone_state_duplicates=sum(n - 1 for n in seen_times.values()),
        zone_states_unexpected=sorted(set(seen_times) - wanted_times),
        transitions_expected=len(want.transitions),
        transition_records=len(alerts),
        transitions_lost=[t for t in want.transitions if t not in seen],
        transition_duplicates={t: n - 1 for t, n in seen.items() if n > 1},
        transitions_unexpected=sorted(set(seen) - wanted_transitions),
    )


def dispatched(box: Sandbox, group: str = "police", idle_s: float = 8) -> list[tuple[str, str]]:
    """(alert_id, state) of every alert transition inside the incident records the real
    ``crowdsafe dispatch`` feed prints (every record of ``crowd.alerts``, from the start)."""
    out = box.cli(
        "dispatch", "--group", group, "--from", "earliest", "--json", "--idle-timeout", str(idle_s)
    )
    if out.returncode != 0:
        raise RuntimeError(f"dispatch failed: {out.stderr[-2000:]}")
    records = [json.loads(line) for line in out.stdout.splitlines()]
    return [(a["alert_id"], a["state"]) for a in alert_transitions(records)]


def kill(box: Sandbox) -> None:
    """SIGKILL the worker's process group and reap it."""
    if box.proc is not None and box.proc.poll() is None:
        procs.signal_group(box.proc.pid, signal.SIGKILL)
        box.proc.wait(30)


def terminate(box: Sandbox, hang_guard_s: float = 90) -> float | None:
    """SIGTERM the worker; seconds until it exited, or None if still running after
    ``hang_guard_s`` (then it is killed)."""
    assert box.proc is not None
    start = time.monotonic()
    procs.signal_group(box.proc.pid, signal.SIGTERM)
    try:
        box.proc.wait(hang_guard_s)
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
        kill(box)
        return None
    return time.monotonic() - start


def partner(box: Sandbox, tmp: Path) -> Sandbox:
    """A second worker of ``box``'s app: same app id and topics, its own web port (and so its
    own worker id and state folder)."""
    tmp.mkdir(parents=True, exist_ok=True)
    other = Sandbox(box.bootstrap, tmp)
    shared = ("CROWDSAFE_WEB_PORT", "CROWDSAFE_STATE_DIR")
    other.env.update(
        {k: v for k, v in box.env.items() if k.startswith("CROWDSAFE_") and k not in shared}
    )
    return other


def zones_served(box: Sandbox) -> set[str]:
    """Zones this worker has published a state for since it started (its ``/api/zones``)."""
    url = f"http://127.0.0.1:{box.web_port}/api/zones"
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())  # noqa: S310 - loopback
    return {z["zone_id"] for z in body.get("zones", []) if z.get("ts")}


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """Poll ``predicate()`` until truthy; its value, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
