"""Zone state: msgpack round trip, migration of the JSON state stored before, unreadable
bytes, size, and configuration taken from the site file rather than from stored state."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.schema.payloads import Reading
from streams.zone.processor import ZoneProcessor
from streams.zone.state import (
    EpisodeState,
    SourceState,
    StateUnreadable,
    ZoneState,
    decode_state,
    encode_state,
)

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = bundled_site()
SITE = load_site(SITE_FILE)
# Written by the worker's code before this state format (see make_state_v1_sample.py in the
# commit that added it): the JSON bytes in the table, the next readings, what it published.
SAMPLE = json.loads((Path(__file__).parent / "data" / "state-v1-sample.json").read_text())


def test_round_trip_keeps_every_field():
    p = ZoneProcessor(SITE)
    tick = [msgspec.convert(r, Reading) for r in SAMPLE["next_readings"][0]]
    fresh = p.apply(
        "entrance-east", None, [r for r in tick if r.zone_id == "entrance-east"], 7 + tick[0].ts
    )
    assert fresh.state.anomaly is not None and set(fresh.state.sources) == {
        "cam-entrance-east",
        "gate-entrance-east",
    }
    assert decode_state(encode_state(fresh.state)) == fresh.state
    migrated = decode_state(SAMPLE["stored"]["entrance-east"].encode())
    assert decode_state(encode_state(migrated)) == migrated


def test_the_stored_v1_sample_migrates_and_continues_as_the_old_code_did():
    p = ZoneProcessor(SITE)
    states = {}
    for zone, raw in SAMPLE["stored"].items():
        old = json.loads(raw)
        state = decode_state(raw.encode())
        assert state.v == 2
        assert {s: src.seq for s, src in state.sources.items()} == {
            s: src["seq"] for s, src in old["sources"].items()
        }
        assert state.gate_occupancy == old["gate_occupancy"]
        assert state.ts == old["ts"] and state.arrived_ms == old["arrived_ms"]
        assert {k: (e.severity, e.started_at) for k, e in state.episodes.items()} == {
            k: (e["severity"], e["started_at"]) for k, e in old["episodes"].items()
        }
        states[zone] = encode_state(state)
    assert decode_state(SAMPLE["stored"]["entrance-east"].encode()).episodes["density"].severity
    scored = 0
    # The next minute of readings, one batch per tick, state encoded and decoded in between as
    # the worker does: the same zone states (anomaly score...) and alerts as before. The forecast
    # is the exception: a version 1 trend cannot be resumed by the quadratic forecaster (version
    # 3), so it starts afresh: in warm-up it only says "already there" (0.0) or nothing.
    forecast_fields = (
        "minutes_to_warning",
        "minutes_to_critical",
        "minutes_to_critical_low",
        "minutes_to_critical_high",
    )
    for readings, published in zip(SAMPLE["next_readings"], SAMPLE["published"], strict=True):
        for zone, expected in published.items():
            batch = [msgspec.convert(r, Reading) for r in readings if r["zone_id"] == zone]
            out = p.apply(zone, decode_state(states[zone]), batch, max(r.ts for r in batch) + 1_000)
            # As published: the records' JSON shapes, compared field by field; sources.faulty
            # was added since (additive: nothing is faulty in this minute).
            # The anomaly score is mapped from a tail probability since detector state v3
            # (README "Anomaly"): compared for range only; its warm-up stage and the calendar
            # are new fields. The forecast starts afresh from an old state (forecast v3): its
            # fields follow the new rules, and the old forecast alerts are not expected.
            got = msgspec.to_builtins(out.zone_states)
            want = [dict(zs) for zs in expected["zone_states"]]
            for a, b in zip(got, want, strict=True):
                assert a.pop("anomaly_stage") in ("learning-week", "warm")
                assert a.pop("calendar") is None
                score, old = a.pop("anomaly_score"), b.pop("anomaly_score")
                assert (score is None) == (old is None) and (score is None or 0 <= score < 1)
                scored += bool(score)
                b["sources"] = {"faulty": [], **b["sources"]}
                there = a["density"] >= a["warning"], a["density"] >= a["critical"]
                assert a["minutes_to_warning"] == (0.0 if there[0] else None), a
                assert a["minutes_to_critical"] == (0.0 if there[1] else None), a
                for f in forecast_fields:
                    a.pop(f)
                    b.pop(f)
            assert got == want
            assert msgspec.to_builtins(out.alerts) == [
                a for a in expected["alerts"] if a["kind"] != "forecast"
            ]
            states[zone] = encode_state(out.state)
    assert scored  # warm: the migrated detectors score (graded: > 0 on ordinary readings)


def test_state_with_everything_fits_in_2_kb():
    """Three sources (two cameras and a gate), both detectors warmed up, four open episodes."""
    state = decode_state(SAMPLE["stored"]["entrance-east"].encode())
    state.sources["cam-extra"] = SourceState(
        "camera", 1_795_557_163_572_340, state.ts, estimate=1234.5, estimate_ts=state.ts
    )
    assert state.anomaly is not None and state.anomaly.n > 24  # warm
    for kind in ("density", "anomaly", "forecast", "source-offline"):
        state.episodes[kind] = EpisodeState(
            "critical", state.ts - 9_000, state.ts - 9_000, state.ts
        )
    new = len(encode_state(state))
    old = len(SAMPLE["stored"]["main-square"])
    assert new <= 2048, new
    assert old > 2 * new  # v1: the JSON dict with base64 anomaly arrays


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x93garbage", "not a zone state"),
        (b"", "not a zone state"),
        (msgspec.msgpack.encode([99, 0, None, 0.0, {}, {}, None, None]), "version 99"),
        (b"{not json", "not JSON"),
        (b'{"sources": {"cam": {"seq": 3}}}', "version 1 state"),  # no kind, no ts
        (b'{"anomaly": {"v": 1, "a": "!!"}}', "version 1 state"),
        (b'{"sources": [], "episodes": {}}', "version 1 state"),
    ],
)
def test_unreadable_state_raises_a_specific_error(raw, why):
    with pytest.raises(StateUnreadable, match=why):
        decode_state(raw)


def test_an_empty_v1_dict_is_a_fresh_zone():
    assert decode_state(b"{}") == ZoneState()


def test_area_and_thresholds_come_from_the_site_file_not_the_stored_state(tmp_path):
    """A zone's area doubled in the site file: after a restart (a new processor on the edited
    file, the same stored state) density and the forecast use the new area."""
    text = SITE_FILE.read_text()
    assert text.count("area_m2 = 600\n") == 2  # entrance-east and entrance-west
    edited = tmp_path / "site.toml"
    edited.write_text(text.replace("area_m2 = 600\n", "area_m2 = 1200\n"))
    raw = SAMPLE["stored"]["entrance-east"].encode()
    batch = [
        msgspec.convert(r, Reading)
        for tick in SAMPLE["next_readings"][:4]
        for r in tick
        if r["zone_id"] == "entrance-east"
    ]
    before = ZoneProcessor(SITE).apply("entrance-east", decode_state(raw), batch).zone_state
    after = ZoneProcessor(load_site(edited)).apply("entrance-east", decode_state(raw), batch)
    now = after.zone_state
    assert now.area_m2 == 1200 and now.occupancy == before.occupancy
    assert now.density == pytest.approx(before.density / 2, abs=1e-4)
    # Twice the room: past warning density under the stored state's 600 m² ("already there"),
    # not under the site file's 1200 m² (the v1 trend itself is not resumed: test_forecast.py).
    assert before.density >= before.warning and before.minutes_to_warning == 0.0
    assert now.density < now.warning and now.minutes_to_warning != 0.0
