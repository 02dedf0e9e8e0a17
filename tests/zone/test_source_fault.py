"""Sources that report but fail: stuck at one value, or disagreeing with the zone's other level
sources (the source-fault alert kind, detectors/source_health.py)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import SiteError, load_site
from streams.edge.simulator import Simulator
from streams.schema.payloads import Alert, Reading, ZoneState
from streams.zone.processor import ZoneProcessor
from streams.zone.state import SourceState, decode_state, encode_state

SITE = load_site(bundled_site())
T0 = 1_764_000_000_000  # 2025-11-24 16:00 UTC, midnight in Guangzhou
TICK = 5_000


def cam(source: str, zone: str, ts: int, count: int) -> Reading:
    return Reading(
        source_id=source, kind="camera", zone_id=zone, ts=ts, seq=ts // TICK, count=count
    )


def gate(source: str, zone: str, ts: int, entered: int, exited: int) -> Reading:
    return Reading(source_id=source, kind="gate", zone_id=zone, ts=ts, seq=ts // TICK,
                   entered=entered, exited=exited)  # fmt: skip


def run(p: ZoneProcessor, zone: str, ticks) -> tuple[list[Alert], ZoneState]:
    """Apply one batch per tick; the state goes through its encoding as in the worker."""
    state, alerts, last = None, [], None
    for readings in ticks:
        out = p.apply(zone, state, readings)
        state = decode_state(encode_state(out.state))
        alerts += [a for a in out.alerts if a.kind == "source-fault"]
        last = out.zone_state or last
    return alerts, last


def test_a_frozen_camera_while_the_gate_counts_the_zone_filling_is_flagged_then_cleared():
    p = ZoneProcessor(SITE)
    zone, camera, gate_id = "entrance-east", "cam-entrance-east", "gate-entrance-east"

    def ticks():
        for i in range(120):  # 10 min at night: a few people, the camera wobbles with them
            yield [cam(camera, zone, T0 + i * TICK, i % 3), gate(gate_id, zone, T0 + i * TICK, 1, 1)]  # fmt: skip
        for i in range(120, 300):  # 15 min frozen at 2 (an almost empty frame) while the gate
            # counts 2 more in than out every 5 s: the zone fills, the zone state says 2 people
            yield [cam(camera, zone, T0 + i * TICK, 2), gate(gate_id, zone, T0 + i * TICK, 5, 3)]
        for i in range(300, 360):  # its feed comes back: the count moves again
            yield [cam(camera, zone, T0 + i * TICK, 400 + i % 5), gate(gate_id, zone, T0 + i * TICK, 3, 3)]  # fmt: skip

    alerts, last = run(p, zone, ticks())
    assert [(a.state, a.severity) for a in alerts] == [("raised", "critical"), ("cleared", "critical")]  # fmt: skip
    raised, cleared = alerts
    # Held at 2 since tick 119 (119 % 3 == 2); the gate had moved by then, so it is stuck as
    # soon as it has been held for stuck_after_s (600 s).
    assert raised.ts == T0 + 119 * TICK + 600_000 + TICK
    assert "cam-entrance-east stuck at 2 people for 10 min" in raised.message
    assert raised.value == 1 and raised.threshold == 1  # its only level source: critical
    assert cleared.ts >= T0 + 300 * TICK + 120_000  # moved again, then the hold time
    assert last.sources.faulty == []


def test_a_camera_held_near_zero_while_nothing_else_moves_is_not_stuck():
    p = ZoneProcessor(SITE)
    zone, camera, gate_id = "entrance-east", "cam-entrance-east", "gate-entrance-east"
    ticks = (
        [cam(camera, zone, T0 + i * TICK, 2), gate(gate_id, zone, T0 + i * TICK, i % 2, i % 2)]
        for i in range(360)  # 30 min: two people waiting, others pass through
    )
    alerts, last = run(p, zone, ticks)
    assert alerts == [] and last.sources.faulty == []


def test_a_frozen_busy_camera_is_flagged_even_with_nobody_to_compare_with():
    p = ZoneProcessor(SITE)
    ticks = ([cam("cam-metro-stairs", "metro-stairs", T0 + i * TICK, 150)] for i in range(130))
    alerts, last = run(p, "metro-stairs", ticks)
    assert [a.state for a in alerts] == ["raised"]
    assert [(f.source_id, f.fault, f.value) for f in last.sources.faulty] == [
        ("cam-metro-stairs", "stuck", 150.0)
    ]
    assert "cam-metro-stairs" in last.sources.fresh  # still reporting, still in the fusion
    assert last.occupancy == 150.0


def square(ts: int, n: int, s: int, lookout: int) -> list[Reading]:
    return [
        cam("cam-square-n", "main-square", ts, n),
        cam("cam-square-s", "main-square", ts, s),
        cam("lookout-square", "main-square", ts, lookout),
    ]


def wobble(i: int, x: int) -> int:
    return x + (i * 7) % 5 - 2  # counting noise, so nothing is stuck


def test_a_camera_reading_three_times_the_others_is_flagged_alone():
    p = ZoneProcessor(SITE)
    # 2000 on the square: each half-camera sees 1000 of it, the lookout 1800; cam-square-n
    # reads three times that (a wrong calibration) for 10 minutes.
    ticks = (
        square(T0 + i * TICK, wobble(i, 3000), wobble(i + 1, 1000), wobble(i + 2, 1800))
        for i in range(120)
    )
    alerts, last = run(p, "main-square", ticks)
    assert [(a.state, a.severity) for a in alerts] == [("raised", "warning")]
    # The smoothed ratio, still converging when raised (from 1: agreement).
    assert re.search(r"cam-square-n reads 2\.[5-9]× the others for 5 min$", alerts[0].message)
    [fault] = last.sources.faulty
    assert (fault.source_id, fault.fault) == ("cam-square-n", "disagreeing")
    assert 2.8 < fault.value <= 3.0
    # Persistent, not instantaneous: nothing in the first half-life plus the minimum duration.
    assert alerts[0].ts - T0 >= 300_000


def test_a_short_disagreement_is_not_a_fault():
    p = ZoneProcessor(SITE)
    ticks = (
        square(
            T0 + i * TICK,
            wobble(i, 3000 if 30 <= i < 60 else 1000),
            wobble(i + 1, 1000),
            wobble(i + 2, 1800),
        )  # fmt: skip
        for i in range(240)
    )
    alerts, last = run(p, "main-square", ticks)
    assert alerts == [] and last.sources.faulty == []


def test_two_sources_that_disagree_are_both_suspect():
    # The metro concourse has one camera; an unknown second counter (a replay) reads 4x.
    p = ZoneProcessor(SITE)
    ticks = (
        [
            cam("cam-metro-concourse", "metro-interchange", T0 + i * TICK, wobble(i, 300)),
            cam("cam-temp", "metro-interchange", T0 + i * TICK, wobble(i, 2000)),
        ]  # fmt: skip
        for i in range(120)
    )
    alerts, last = run(p, "metro-interchange", ticks)
    assert {f.source_id for f in last.sources.faulty} == {"cam-metro-concourse", "cam-temp"}
    # Only configured sources count: one, the zone's only level source, so critical.
    assert [(a.state, a.severity, a.value) for a in alerts] == [("raised", "critical", 1.0)]


def test_a_quiet_night_where_every_source_reads_zero_is_not_a_fault():
    p = ZoneProcessor(SITE)
    hours = 3 * 3600_000 // TICK
    square_alerts, square_last = run(p, "main-square", (square(T0 + i * TICK, 0, 0, 0) for i in range(hours)))  # fmt: skip
    gate_alerts, gate_last = run(
        p,
        "entrance-east",
        ([cam("cam-entrance-east", "entrance-east", T0 + i * TICK, 0),
          gate("gate-entrance-east", "entrance-east", T0 + i * TICK, 0, 0)] for i in range(hours)),
    )  # fmt: skip
    assert square_alerts == gate_alerts == []
    assert square_last.sources.faulty == gate_last.sources.faulty == []


@pytest.mark.parametrize("start_hour", [0, 6, 12, 18])
def test_normal_simulated_days_raise_no_source_fault(start_hour):
    p = ZoneProcessor(SITE)
    start = T0 + start_hour * 3600_000
    sim = Simulator(SITE, "normal", start_ms=start, seed=start_hour)
    states: dict[str, object] = {}
    faults = []
    for ts, batch in sim.ticks():
        if ts >= start + 6 * 3600_000:
            break
        readings = [msgspec.convert(r, Reading) for r in batch]
        for zone in {r.zone_id for r in readings}:
            out = p.apply(zone, states.get(zone), [r for r in readings if r.zone_id == zone])
            states[zone] = out.state
            faults += [a for a in out.alerts if a.kind == "source-fault"]
            faults += [f for zs in out.zone_states for f in zs.sources.faulty]
    assert faults == []


def test_settings_come_from_the_site_file_and_are_checked(tmp_path: Path):
    text = bundled_site().read_text()
    path = tmp_path / "site.toml"
    path.write_text(
        text.replace("stuck_after_s = 600", "stuck_after_s = 60", 1).replace(
            "area_m2 = 240", "area_m2 = 240\nalerts = { source-fault = { stuck_after_s = 30 } }"
        )
    )
    site = load_site(path)
    p = ZoneProcessor(site)
    assert p._health["metro-stairs"].stuck_after_s == 30
    assert p._health["main-square"].stuck_after_s == 60
    assert p._health["main-square"].disagree_factor == 2.0
    ticks = ([cam("cam-metro-stairs", "metro-stairs", T0 + i * TICK, 150)] for i in range(8))
    alerts, _ = run(p, "metro-stairs", ticks)
    assert [a.state for a in alerts] == ["raised"]
    path.write_text(text.replace("area_m2 = 240", "area_m2 = 240\nalerts = { source-fault = { disagree_factor = 0.5 } }"))  # fmt: skip
    with pytest.raises(SiteError, match="metro-stairs.*source-fault.disagree_factor"):
        ZoneProcessor(load_site(path))


def test_state_stored_before_the_health_fields_still_decodes():
    old = msgspec.msgpack.encode(["camera", 7, T0, "ok", None, 12.0, T0, None, 0])
    src = msgspec.msgpack.decode(old, type=SourceState)
    assert (src.seq, src.estimate, src.held_since, src.ratio, src.net_flow) == (
        7,
        12.0,
        None,
        None,
        0.0,
    )
