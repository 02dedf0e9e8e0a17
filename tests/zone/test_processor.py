"""Zone processing without Kafka: parsing, fusion, staleness, duplicates, alerts."""

from __future__ import annotations

import json

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.intake import Rejected, parse_message
from streams.schema.payloads import Alert, Reading, SourceStatus
from streams.zone.processor import ZoneProcessor
from streams.zone.state import decode_state, encode_state

SITE = load_site(bundled_site())
T0 = 1_764_000_000_000


def reading(source: str, zone: str, ts: int = T0, seq: int = 1, **fields) -> Reading:
    kind = SITE.source(source).kind if source in SITE.source_by_id else "camera"
    return Reading(source_id=source, kind=kind, zone_id=zone, ts=ts, seq=seq, **fields)


def kinds_and_states(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.kind, a.state) for a in alerts]


def encode(**fields) -> bytes:
    return json.dumps(fields).encode()


GOOD = {
    "source_id": "cam-underpass",
    "kind": "camera",
    "zone_id": "underpass",
    "ts": T0,
    "seq": 1,
    "count": 10,
}


@pytest.mark.parametrize(
    ("value", "reason", "code"),
    [
        (b"\xff\xfe", "not JSON", "json"),
        (b"[1, 2]", "expected a JSON object", "json"),
        (encode(**{**GOOD, "count": "10"}), "^invalid reading: count: Expected int", "invalid"),
        (encode(**{**GOOD, "count": -1}), "^invalid reading: count: Expected int >= 0", "invalid"),
        (encode(**{**GOOD, "count": 2.0}), "^invalid reading: count: ", "invalid"),  # strict
        (encode(**{**GOOD, "kind": "drone"}), "^invalid reading: kind: ", "invalid"),
        (encode(**{**GOOD, "zone_id": "nowhere"}), "unknown zone 'nowhere'", "unknown-zone"),
        (encode(**{**GOOD, "ts": 1_000}), "^invalid reading: ts: ", "invalid"),
        (encode(**{**GOOD, "ts": T0 + 10**9}), "in the future", "future"),
        (encode(**{k: v for k, v in GOOD.items() if k != "seq"}), "seq: field required", "invalid"),
        (encode(**{k: v for k, v in GOOD.items() if k != "count"}), "needs count", "invalid"),
        (encode(**{**GOOD, "status": "offline", "count": None}), "needs a reason", "invalid"),
        (encode(readings=[]), "^invalid reading: readings: ", "invalid"),
        (encode(readings=[GOOD, {**GOOD, "count": -1}]), "readings.1.count: ", "invalid"),
        (encode(readings=[GOOD, {**GOOD, "count": None}]), "readings.1: .*needs count", "invalid"),
        (encode(**{**GOOD, "count": 10**400}), "count", "invalid"),  # would overflow a float
        (encode(**{**GOOD, "count": 2**63}), "count", "invalid"),  # absurd, not an overflow
        (b'{"count": ' + b"1" * 5000 + b"}", "count", "invalid"),  # past Python's digit limit
        (b"[" * 100_000 + b"]" * 100_000, "expected a JSON object", "json"),  # not even read
        # Nesting past the recursion limit, in a field that is otherwise ignored.
        (
            encode(**GOOD)[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "not JSON",
            "json",
        ),
        # Bad UTF-8 in an ignored field (msgspec alone checks only the strings it keeps).
        (encode(**GOOD)[:-1] + b', "x": "\xff"}', "not JSON", "json"),
        (encode(**{**GOOD, "speed_mps": float("inf")}), "not JSON", "json"),  # "Infinity"
        (
            encode(**GOOD).replace(b'"count": 10', b'"count": 10, "speed_mps": 1e400'),
            "speed_mps",
            "invalid",
        ),
        (encode(**GOOD)[:-1] + b"} trailing", "not JSON", "json"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(value, reason, code):
    with pytest.raises(Rejected, match=reason) as err:
        parse_message(b"underpass", value, SITE, latest_ok_ms=T0 + 60_000)
    assert err.value.code == code


def test_a_single_reading_with_a_nested_readings_field_is_still_a_single_reading():
    value = encode(**{**GOOD, "extra": {"readings": [1]}})
    assert [r.count for r in parse_message(b"underpass", value, SITE)] == [10]


def test_a_batch_is_decoded_in_order():
    value = encode(v=1, readings=[{**GOOD, "seq": i, "count": i} for i in range(1, 4)])
    assert [r.count for r in parse_message(b"underpass", value, SITE)] == [1, 2, 3]


def test_a_keyless_message_is_rejected_because_the_key_places_the_zone_state():
    with pytest.raises(Rejected, match="no message key") as err:
        parse_message(None, encode(**GOOD), SITE)
    assert err.value.code == "key"


def test_a_source_that_once_sent_a_count_is_not_pinned_to_it():
    p = ZoneProcessor(SITE)
    state = p.apply(
        "metro-interchange",
        None,
        [reading("gate-metro", "metro-interchange", count=0, entered=0, exited=0)],
    ).state
    for i in range(1, 20):
        out = p.apply(
            "metro-interchange",
            state,
            [
                reading(
                    "gate-metro",
                    "metro-interchange",
                    ts=T0 + i * 10_000,
                    seq=1 + i,
                    entered=100,
                    exited=0,
                )
            ],
        )
        state = out.state
    assert out.zone_state.occupancy > 1000  # the gates, not the count of 3 minutes ago


def test_unknown_sources_count_for_occupancy_but_never_as_down_and_are_forgotten():
    p = ZoneProcessor(SITE)
    state = p.apply("underpass", None, [reading("typo-cam", "underpass", count=50)]).state
    out = p.apply(
        "underpass", state, [reading("cam-underpass", "underpass", ts=T0 + 120_000, count=40)]
    )
    assert out.zone_state.sources.stale == ["typo-cam"]
    assert [a.kind for a in out.alerts] == []  # a stale typo is not a camera down
    later = p.apply(
        "underpass",
        out.state,
        [reading("cam-underpass", "underpass", ts=T0 + 86_500_000, seq=2, count=40)],
    )
    assert "typo-cam" not in later.state.sources  # a day later it is gone


def test_key_must_be_the_zone_and_batches_are_accepted():
    with pytest.raises(Rejected, match="key 'ticket-hall'"):
        parse_message(b"ticket-hall", encode(**GOOD), SITE)
    batch = encode(readings=[GOOD, {**GOOD, "seq": 2, "count": 12}])
    assert [r.count for r in parse_message(b"underpass", batch, SITE)] == [10, 12]


def test_cameras_are_scaled_by_coverage_and_weighted():
    p = ZoneProcessor(SITE)
    out = p.apply(
        "main-square",
        None,
        [
            reading("cam-square-n", "main-square", count=1000),  # coverage 0.5 -> 2000
            reading("cam-square-s", "main-square", count=1500),  # coverage 0.5 -> 3000
            reading("lookout-square", "main-square", count=2250),  # 0.9 -> 2500, weight 0.5
        ],
    )
    assert out.zone_state.occupancy == pytest.approx((2000 + 3000 + 0.5 * 2500) / 2.5)
    assert out.zone_state.density == pytest.approx(2500 / 32000, abs=1e-4)


def test_stale_and_offline_sources_are_left_out_never_read_as_zero():
    p = ZoneProcessor(SITE)
    state = p.apply("main-square", None, [reading("cam-square-n", "main-square", count=1000)]).state
    later = T0 + 61_000  # cam-square-n is now more than 60 s behind
    out = p.apply(
        "main-square",
        state,
        [
            reading("cam-square-s", "main-square", ts=later, count=2000),
            reading("lookout-square", "main-square", ts=later, status="offline", reason="lost"),
        ],
    )
    zs = out.zone_state
    assert zs.occupancy == 4000  # only cam-square-s: 2000 / 0.5
    assert zs.sources == SourceStatus(
        fresh=["cam-square-s"],
        stale=["cam-square-n"],
        offline=["lookout-square"],
    )


def test_a_zone_with_no_fresh_source_has_unknown_density_and_keeps_its_alert_open():
    p = ZoneProcessor(SITE)
    out = p.apply("metro-stairs", None, [reading("cam-metro-stairs", "metro-stairs", count=700)])
    assert kinds_and_states(out.alerts) == [("density", "raised")]  # 700/240 m² = 2.9 > 2.7
    out = p.apply(
        "metro-stairs",
        out.state,
        [
            reading(
                "cam-metro-stairs",
                "metro-stairs",
                ts=T0 + 600_000,
                seq=2,
                status="offline",
                reason="video signal lost",
            )
        ],
    )
    assert out.zone_state.density is None and out.zone_state.los is None
    assert out.zone_state.minutes_to_critical is None
    # A blind camera neither clears nor escalates the density alert; it raises its own.
    assert kinds_and_states(out.alerts) == [("source-offline", "raised")]
    assert out.alerts[0].severity == "critical"  # the zone's only source: the zone is blind
    assert "zone is blind" in out.alerts[0].message


def test_gates_carry_the_zone_between_camera_readings_and_alone():
    p = ZoneProcessor(SITE)
    state = p.apply(
        "metro-interchange", None, [reading("cam-metro-concourse", "metro-interchange", count=600)]
    ).state  # 600/0.6
    assert state.gate_occupancy == 1000
    out = p.apply(
        "metro-interchange",
        state,
        [reading("gate-metro", "metro-interchange", ts=T0 + 70_000, entered=300, exited=100)],
    )
    assert out.zone_state.occupancy == 1200  # camera stale: 1000 + 300 - 100
    assert out.zone_state.sources.stale == ["cam-metro-concourse"]


def test_re_delivered_readings_are_dropped_so_gates_never_count_twice():
    p = ZoneProcessor(SITE)
    gate = reading("gate-metro", "metro-interchange", entered=50, exited=0, seq=7)
    state = p.apply("metro-interchange", None, [gate]).state
    again = p.apply("metro-interchange", state, [gate])
    assert again.duplicates == 1 and again.state.gate_occupancy == 50
    assert again.applied == []  # nor counted as an accepted reading


def test_result_does_not_depend_on_batching():
    sim = Simulator(SITE, "surge", start_ms=T0)
    readings = []
    for ts, rs in sim.ticks():
        if ts - T0 > sim.length_s * 1000:
            break
        readings += [msgspec.convert(r, Reading) for r in rs if r["zone_id"] == "entrance-east"]

    def run(batch: int) -> list[tuple]:
        p, state, alerts = ZoneProcessor(SITE), None, []
        for i in range(0, len(readings), batch):
            out = p.apply("entrance-east", state, readings[i : i + batch])
            state, alerts = out.state, alerts + out.alerts
        return [(a.state, a.ts, a.alert_id) for a in alerts if a.kind == "density"]

    one_by_one = run(1)
    assert [s for s, *_ in one_by_one] == ["raised", "escalated", "cleared"]
    assert run(7) == one_by_one == run(500)


def test_the_forecast_warns_minutes_before_the_surge_reaches_warning_density():
    sim = Simulator(SITE, "surge", start_ms=T0)
    p, state, alerts = ZoneProcessor(SITE), None, []
    for ts, rs in sim.ticks():
        if ts - T0 > sim.length_s * 1000:
            break
        zone_readings = [msgspec.convert(r, Reading) for r in rs if r["zone_id"] == "entrance-east"]
        out = p.apply("entrance-east", state, zone_readings)
        state, alerts = out.state, alerts + out.alerts
    first = {}
    for a in alerts:
        first.setdefault((a.kind, a.state), a)
    forecast, density = first[("forecast", "raised")], first[("density", "raised")]
    lead_s = (density.ts - forecast.ts) / 1000
    assert lead_s >= 120, lead_s  # at least two minutes of early warning
    assert forecast.ts > T0 + sim.surge.start_s * 1000  # and not before the surge began
    assert "forecast in" in forecast.message


@pytest.mark.parametrize("scenario", ["normal", "blind-camera"])
def test_calm_scenarios_raise_no_crowd_alert_at_any_hour(scenario):
    for hour_offset in range(0, 24, 3):
        sim = Simulator(SITE, scenario, start_ms=T0 + hour_offset * 3_600_000)
        p, states, alerts = ZoneProcessor(SITE), {}, []
        for ts, rs in sim.ticks():
            if ts - sim.start_ms > 1800_000:
                break
            for r in rs:
                out = p.apply(r["zone_id"], states.get(r["zone_id"]), [msgspec.convert(r, Reading)])
                states[r["zone_id"]] = out.state
                alerts += out.alerts
        got = [(a.zone_id, a.kind, a.state) for a in alerts]
        if scenario == "normal":
            assert got == [], hour_offset
        else:  # the blind camera (cam-square-n, one of main-square's three) and nothing else
            assert got == [
                ("main-square", "source-offline", "raised"),
                ("main-square", "source-offline", "cleared"),
            ], hour_offset
            assert alerts[0].severity == "warning" and "cam-square-n" in alerts[0].message


def test_sweep_calls_a_zone_blind_only_after_stale_after_s_of_wall_clock_silence():
    p = ZoneProcessor(SITE)
    arrived = T0 + 2_000  # the wall clock when the reading arrived, 2 s after its event time
    state = p.apply(
        "underpass", None, [reading("cam-underpass", "underpass", count=40)], arrived_ms=arrived
    ).state
    assert p.sweep("underpass", state, arrived + 59_000).alerts == []  # 60 s not yet over
    out = p.sweep("underpass", state, arrived + 61_000)
    assert kinds_and_states(out.alerts) == [("source-offline", "raised")]
    assert out.alerts[0].ts == T0 + 61_000  # judged at the event time it would have reached
    assert out.zone_states[0].occupancy is None
    assert p.sweep("underpass", out.state, arrived + 71_000).alerts == []  # once per episode
    assert p.sweep("metro-stairs", None, arrived + 99_000).alerts == []  # never heard of: nothing
    # A worker restarted at arrived + 50 s counts the silence from its own start.
    assert p.sweep("underpass", state, arrived + 100_000, since_ms=arrived + 50_000).alerts == []


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_the_forecast_never_claims_a_crossing_already_made_or_moved_away_from(speed):
    """The demo's repeating surge (issue 11), as an operator saw it at 10x: the forecast alert
    was raised with the zone already critical ("forecast in 15 min ... now 5.88 p/m²"), stayed
    open while the crowd thinned, and minutes_to_warning was 0 at 2.5 p/m² (warning 4.0)."""
    sim = Simulator(SITE, "surge", start_ms=T0, repeat=True, compress=speed)
    surge, cycle_s = sim.surge, sim.cycle_s
    p, state, alerts = ZoneProcessor(SITE), None, []
    states = []
    for ts, rs in sim.ticks():
        if ts - T0 > 4 * cycle_s / speed * 1000:
            break
        zone_readings = [msgspec.convert(r, Reading) for r in rs if r["zone_id"] == "entrance-east"]
        out = p.apply("entrance-east", state, zone_readings)
        state, alerts, states = out.state, alerts + out.alerts, states + out.zone_states
    for z in states:
        for limit, minutes in (
            (z.warning, z.minutes_to_warning),
            (z.critical, z.minutes_to_critical),
        ):
            if z.density >= limit:
                assert minutes == 0.0, z  # there now: no future crossing
            else:
                assert minutes != 0.0, z  # not there: never "0 minutes"
        story_s = (z.ts - T0) / 1000 * speed % cycle_s
        decaying_s = story_s - (surge.start_s + surge.ramp_s + surge.hold_s)
        if 60 * speed <= decaying_s <= surge.decay_s:  # a minute (of event time) into the decay
            assert z.minutes_to_warning in (None, 0.0), z
            assert z.minutes_to_critical in (None, 0.0), z
    forecasts = [a for a in alerts if a.kind == "forecast"]
    for a in forecasts:
        if a.state != "cleared":
            now = float(a.message.rsplit("now ", 1)[1].split()[0])
            assert now < 4.7, a.message  # never raised for a zone already critical
    raised = [a for a in forecasts if a.state == "raised"]
    cleared = [a for a in forecasts if a.state == "cleared"]
    assert len(cleared) >= len(raised) - 1  # each clears once the surge is over
    if speed == 1.0:  # in real time, every cycle is foreseen before its density warning
        assert len(raised) == 4


def test_a_stored_forecast_of_an_older_version_starts_a_new_trend_not_a_crash():
    from streams.zone.state import ForecastState, decode_state, encode_state

    p = ZoneProcessor(SITE)
    out = p.apply("underpass", None, [reading("cam-underpass", "underpass", count=100)])
    out.state.forecast = ForecastState(2, T0 / 60_000, 0.1, [1.0] * 7, [0.0, 0.0])
    state = decode_state(encode_state(out.state))
    nxt = p.apply(
        "underpass", state, [reading("cam-underpass", "underpass", T0 + 5000, 2, count=120)]
    )
    assert nxt.zone_state.minutes_to_critical is None  # warming up again
    assert nxt.state.forecast is not None and nxt.state.forecast.v == 3


def test_readings_of_one_event_time_are_judged_once():
    """Three cameras at one time are one observation of the zone: one zone state, and the
    forecaster learns one point (its sum of weights is 1, not 3), from all three readings."""
    p = ZoneProcessor(SITE)
    cams = ["cam-square-n", "cam-square-s", "lookout-square"]
    out = p.apply("main-square", None, [reading(c, "main-square", count=100) for c in cams])
    assert [z.ts for z in out.zone_states] == [T0] and len(out.applied) == 3
    assert out.zone_state.sources.fresh == sorted(cams)
    assert out.state.forecast.sums[0] == 1.0


def test_gate_inflow_of_one_event_time_is_learned_whole():
    """Two gate readings at one time: the forecaster learns the net inflow of both (fed one
    at a time, the second came at no elapsed time and was dropped)."""
    p = ZoneProcessor(SITE)
    first = reading("gate-metro", "metro-interchange", entered=0, exited=0)
    state = p.apply("metro-interchange", None, [first]).state
    stored = encode_state(state)  # apply updates the state it is given: keep a copy
    later = [
        reading("gate-metro", "metro-interchange", ts=T0 + 60_000, seq=2, entered=30, exited=0),
        reading("gate-metro", "metro-interchange", ts=T0 + 60_000, seq=3, entered=25, exited=5),
    ]
    out = p.apply("metro-interchange", state, later)
    assert out.state.forecast.inflow == [50.0, 1.0]  # persons over one minute
    assert len(out.zone_states) == 1
    # A batch that ends between them: the second has no minutes to spread over and is carried
    # into the next interval (it was dropped: 30 persons learned, not 50).
    split = p.apply("metro-interchange", decode_state(stored), later[:1]).state
    split = p.apply("metro-interchange", split, later[1:]).state
    assert split.forecast.inflow == [30.0, 1.0] and split.forecast.gate[-1] == 20.0  # pending
    nxt = reading("gate-metro", "metro-interchange", ts=T0 + 120_000, seq=4, entered=0, exited=0)
    split = p.apply("metro-interchange", split, [nxt]).state
    whole = p.apply("metro-interchange", out.state, [nxt]).state
    # All 50 persons learned; the 20 a minute later, so forgotten a minute less.
    keep = 0.5 ** (1 / 6)
    assert split.forecast.inflow[0] == pytest.approx(whole.forecast.inflow[0] + 20 * (1 - keep))


def test_the_gates_line_survives_the_stored_state_between_batches():
    """The forecaster's line through the gates' rates is stored with the zone (a trailing,
    optional field), so a worker that decodes the state per batch keeps fitting it; a state
    stored before the field decodes, the line starting anew with the next gate reading."""
    from streams.zone.state import ForecastState, decode_state, encode_state

    p, state = ZoneProcessor(SITE), None
    for i in range(12):
        ts = T0 + i * 30_000
        batch = [
            reading("cam-metro-concourse", "metro-interchange", ts, i + 1, count=1000 + 20 * i),
            reading("gate-metro", "metro-interchange", ts, i + 1, entered=40, exited=30),
        ]
        state = decode_state(encode_state(p.apply("metro-interchange", state, batch).state))
    stored = state.forecast
    assert stored is not None and stored.gate is not None and stored.gate[1] > 0.0  # Σw t²
    # As stored before the field: the array without its last element.
    fields = msgspec.msgpack.decode(msgspec.msgpack.encode(stored))[:-1]
    state.forecast = msgspec.msgpack.decode(msgspec.msgpack.encode(fields), type=ForecastState)
    assert state.forecast.gate is None and "g" not in state.forecast.to_dict()
    count = stored.gate[5]  # the rates the line holds (12 batches' worth, discounted)
    assert count > 3.0
    cam = reading("cam-metro-concourse", "metro-interchange", T0 + 400_000, 99, count=1250)
    gate = reading("gate-metro", "metro-interchange", T0 + 400_000, 99, entered=40, exited=30)
    nxt = p.apply("metro-interchange", decode_state(encode_state(state)), [cam, gate])
    assert nxt.state.forecast is not None and nxt.state.forecast.gate is not None
    assert nxt.state.forecast.gate[5] == 1.0  # anew: this batch's rate alone


def test_an_alert_says_when_a_holiday_is_in_force_and_the_zone_state_names_it():
    """The bundled site's calendar (China): on National Day the zone state names the day and
    every alert ends with it in brackets; on an ordinary day neither does."""
    from datetime import UTC, datetime

    national_day = int(datetime(2026, 10, 1, 4, tzinfo=UTC).timestamp() * 1000)  # noon
    for ts, label in ((national_day, "National Day (public holiday)"), (T0, None)):
        p = ZoneProcessor(SITE)
        cam = reading("cam-metro-stairs", "metro-stairs", ts=ts, count=700)
        out = p.apply("metro-stairs", None, [cam], arrived_ms=ts)
        assert out.zone_state.calendar == label
        (alert,) = out.alerts
        assert alert.kind == "density"
        assert alert.message.endswith(f" [{label}]") == (label is not None), alert.message
