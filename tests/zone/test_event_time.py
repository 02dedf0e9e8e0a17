"""One event-time policy per zone: late and future readings, counter restarts, outputs that
never go back in time, a wrong clock that cannot split or blind a zone."""

from __future__ import annotations

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.schema.payloads import Reading
from streams.zone.clock import EventTimePolicy
from streams.zone.processor import ZoneProcessor
from streams.zone.state import EpisodeState

SITE = load_site(bundled_site())
NOW = 1_764_000_000_000  # the wall clock when the readings arrive
SQUARE = ("cam-square-n", "cam-square-s", "lookout-square")


def cam(source: str, ts: int, seq: int, count: int, zone: str = "main-square") -> Reading:
    return Reading(source_id=source, kind="camera", zone_id=zone, ts=ts, seq=seq, count=count)


def square_tick(ts: int, seq: int, counts=(30_000, 30_000, 30_000)) -> list[Reading]:
    return [cam(s, ts, seq, c) for s, c in zip(SQUARE, counts, strict=True)]


def test_a_forged_huge_seq_does_not_mute_a_camera():
    p = ZoneProcessor(SITE)
    zone = "ticket-hall"
    forged = cam("cam-ticket-hall", NOW - 10_000, 2**63 - 1, 0, zone)
    state = p.apply(zone, None, [forged], NOW).state
    honest = cam("cam-ticket-hall", NOW - 5_000, 17, 900, zone)
    out = p.apply(zone, state, [honest], NOW)
    assert out.duplicates == 0 and out.seq_resets == 1  # accepted, and the restart counted
    assert out.zone_state.occupancy > 0  # the camera's count, not the forged zero
    assert state.sources["cam-ticket-hall"].resets == 1
    # A real re-delivery (same seq and time) is still dropped.
    again = p.apply(zone, out.state, [honest], NOW)
    assert again.duplicates == 1 and again.applied == []


def test_a_camera_an_hour_ahead_is_refused_and_flagged_and_the_zone_stays_whole():
    p = ZoneProcessor(SITE)
    state = None
    alerts = []
    for i in range(12):  # a minute of readings, every 5 s; one camera an hour ahead
        ts = NOW - 60_000 + i * 5_000
        tick = square_tick(ts, i + 1)
        tick[2] = cam("lookout-square", ts + 3_600_000, i + 1, 12_000)
        out = p.apply("main-square", state, tick, ts + 500)
        state = out.state
        alerts += out.alerts
        assert [r.code for r in out.rejected] == ["future"]
        assert all(z.ts <= ts + 500 for z in out.zone_states)  # never ahead of the clock
    zone = out.zone_state
    assert zone.sources.fresh == ["cam-square-n", "cam-square-s"]  # honest ones: fresh
    assert zone.sources.offline == ["lookout-square"]
    assert "clock 3600 s ahead" in state.sources["lookout-square"].reason
    assert zone.occupancy is not None  # not blind
    offline = [a for a in alerts if a.kind == "source-offline"]
    assert [(a.state, a.severity) for a in offline] == [("raised", "warning")]
    assert offline[0].started_at <= NOW  # not an hour in the future


def test_late_readings_are_applied_without_taking_the_zone_back_then_refused():
    policy = EventTimePolicy(allowed_lateness_ms=900_000, max_skew_ms=300_000)
    p = ZoneProcessor(SITE, clock=policy)
    state = p.apply("main-square", None, square_tick(NOW, 1), NOW + 100).state
    ten_min_late = [cam("cam-square-n", NOW - 600_000, 2, 31_000)]
    out = p.apply("main-square", state, ten_min_late, NOW + 200)
    assert out.rejected == [] and out.applied == ten_min_late
    assert [z.ts for z in out.zone_states] == [NOW]  # published at the watermark, not 600 s back
    twenty_min_late = [cam("cam-square-s", NOW - 1_200_000, 3, 31_000)]
    out = p.apply("main-square", out.state, twenty_min_late, NOW + 300)
    assert [r.code for r in out.rejected] == ["late"] and out.zone_states == []
    assert "behind zone 'main-square'" in out.rejected[0].reason


def test_old_state_from_the_future_does_not_make_new_readings_late():
    """State left by a run whose simulated clock ran ahead (older code) still takes readings."""
    p = ZoneProcessor(SITE)
    ahead = square_tick(NOW + 86_400_000, 1)  # a day ahead: accepted back then (no wall clock)
    state = p.apply("main-square", None, ahead).state
    out = p.apply("main-square", state, square_tick(NOW, 2), NOW + 100)
    assert out.rejected == [] and len(out.applied) == 3
    # A re-run on that state: its sources are fresh, and nothing says they went offline.
    assert out.zone_state.sources.fresh == sorted(SQUARE)
    assert [a for a in out.alerts if a.kind == "source-offline"] == []


def test_a_source_may_declare_its_own_reporting_interval(tmp_path):
    text = bundled_site().read_text()
    old = 'id = "wifi-waiting-1"'
    assert old in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace(old, old + "\nstale_after_s = 600", 1))
    site = load_site(path)
    p = ZoneProcessor(site)
    zone = site.source("wifi-waiting-1").zones[0]
    cams = ["cam-extra"]  # a second source of the zone (not in the site file: face value)
    first = [Reading(source_id="wifi-waiting-1", kind="sensor", zone_id=zone, ts=NOW, seq=1,
                     count=100)] + [cam(c, NOW, 1, 100, zone) for c in cams]  # fmt: skip
    state = p.apply(zone, None, first, NOW).state
    later = [cam(c, NOW + 120_000, 2, 100, zone) for c in cams]  # the sensor is 2 min quiet
    out = p.apply(zone, state, later, NOW + 120_000)
    assert "wifi-waiting-1" in out.zone_state.sources.fresh  # within its own 600 s
    # The site's default (60 s) would have called it stale.
    default = ZoneProcessor(SITE)
    state = default.apply(zone, None, first, NOW).state
    out = default.apply(zone, state, later, NOW + 120_000)
    assert "wifi-waiting-1" in out.zone_state.sources.stale


def test_the_sweep_waits_for_a_sources_own_interval_before_calling_a_zone_blind(tmp_path):
    old = 'id = "wifi-waiting-1"'
    path = tmp_path / "site.toml"
    path.write_text(bundled_site().read_text().replace(old, old + "\nstale_after_s = 600", 1))
    site = load_site(path)
    p = ZoneProcessor(site)
    zone = site.source("wifi-waiting-1").zones[0]
    sensor = Reading(source_id="wifi-waiting-1", kind="sensor", zone_id=zone, ts=NOW, seq=1,
                     count=100)  # fmt: skip
    state = p.apply(zone, None, [sensor], NOW).state
    # An open forecast episode must not be cleared by a sweep that calls the zone blind while
    # its only source is still within its own interval (the sweep knows no forecast).
    state.episodes["forecast"] = EpisodeState(severity="warning", started_at=NOW)
    for silence_s in (120, 300, 500):  # silent, but within the sensor's 10 min
        quiet = p.sweep(zone, state, NOW + silence_s * 1000)
        assert quiet.alerts == [] and quiet.zone_states == []
    blind = p.sweep(zone, state, NOW + 601_000)
    assert [(a.kind, a.severity) for a in blind.alerts] == [("source-offline", "critical")]
