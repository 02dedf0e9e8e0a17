"""The command centre's view, record by record (no Kafka)."""

from __future__ import annotations

import json

import pytest

from streams.centre.view import BUCKET_MS, HISTORY_POINTS, CentreView, Unusable

MIN = 60_000


@pytest.fixture
def view(records):
    return CentreView(records.site)


def test_every_site_zone_shows_a_placeholder_until_seen(view, records):
    zones = view.zones(records.t0)
    assert [z["zone_id"] for z in zones] == [z.id for z in records.site.zones]
    east = next(z for z in zones if z["zone_id"] == "entrance-east")
    assert east["density"] is None and east["ts"] is None and east["updated_ms"] is None
    assert east["stale"] is True and east["history"] == []
    assert east["warning"] == 4.0 and east["critical"] == 4.7  # the site's thresholds


def test_a_zone_state_is_shown_as_published_with_update_time_and_point(view, records):
    rec = records.zone_state(density=3.2)
    event = view.apply_zone_state(json.dumps(rec).encode(), records.t0 + 500)
    assert {k: event[k] for k in rec} == rec  # the record as published
    assert event["updated_ms"] == records.t0 + 500 and event["stale"] is False
    assert event["point"] == [records.t0 // BUCKET_MS * BUCKET_MS, 3.2]
    assert "history" not in event
    shown = view.zone("entrance-east", records.t0 + 1000)
    assert shown["density"] == 3.2 and shown["minutes_to_critical"] == 12.5  # forecast kept
    assert shown["history"] == [event["point"]]


def test_a_zone_not_updated_for_stale_after_s_is_stale_then_fresh_again(view, records):
    t = records.t0
    view.apply_zone_state(records.zone_state(ts=t), t)
    stale_ms = int(records.site.defaults.stale_after_s * 1000)
    assert not view.stale("entrance-east", t + stale_ms)
    assert view.stale("entrance-east", t + stale_ms + 1)
    assert view.zone("entrance-east", t + stale_ms + 1)["stale"] is True
    view.apply_zone_state(records.zone_state(ts=t + 70_000), t + stale_ms + 2)
    assert not view.stale("entrance-east", t + stale_ms + 3)


def test_stale_time_can_be_shorter_than_the_sites(records):
    view = CentreView(records.site, stale_after_s=5)
    view.apply_zone_state(records.zone_state(), records.t0)
    assert view.stale("entrance-east", records.t0 + 5001)


def test_older_and_repeated_records_change_nothing(view, records):
    t = records.t0
    assert view.apply_zone_state(records.zone_state(ts=t + 5000, density=3.0), t + 5000)
    assert view.apply_zone_state(records.zone_state(ts=t, density=1.0), t + 6000) is None
    assert view.apply_zone_state(records.zone_state(ts=t + 5000, density=3.0), t + 7000) is None
    shown = view.zone("entrance-east", t + 7000)
    assert shown["density"] == 3.0 and shown["updated_ms"] == t + 5000


def test_history_is_the_last_hour_in_at_most_120_peaks_with_gaps_as_null(view, records):
    t = records.t0 - records.t0 % BUCKET_MS
    # Two hours of records every 10 s, then a 5-minute gap, then one more.
    for i in range(720):
        ts = t + i * 10_000
        view.apply_zone_state(records.zone_state(ts=ts, density=1.0 + (i % 3)), ts)
    end = t + 720 * 10_000 + 5 * MIN
    view.apply_zone_state(records.zone_state(ts=end, density=None), end)
    history = view.zone("entrance-east", end)["history"]
    assert len(history) == HISTORY_POINTS
    assert history[-1] == [end // BUCKET_MS * BUCKET_MS, None]  # blind: no density
    assert all(
        later[0] - earlier[0] == BUCKET_MS
        for earlier, later in zip(history, history[1:], strict=False)
    )
    assert history[0][0] > end - 3600_000
    values = [v for _, v in history]
    assert values[-11:-1] == [None] * 10  # the gap shows: 5 minutes without a record
    assert set(values[:-11]) == {3.0}  # each 30 s bucket: the peak of its three records


def test_open_incidents_are_the_newest_record_each_without_resolved_ones(view, records):
    inc = records.incident
    assert view.apply_incident(inc(seq=1)) is not None
    assert view.apply_incident(inc(seq=1)) is None  # a redelivery
    view.apply_incident(inc(seq=2, severity="critical", ts=records.t0 + 60_000))
    assert view.apply_incident(inc(seq=1)) is None  # an older record changes nothing
    other = inc(zone="west-plaza", ts=records.t0 + 120_000)
    view.apply_incident(other)
    third = inc(zone="underpass", severity="critical", ts=records.t0 + 30_000)
    view.apply_incident(third)
    shown = view.incidents()
    # worst severity first, then newest first
    assert [(r["zone_id"], r["seq"]) for r in shown] == [
        ("entrance-east", 2), ("underpass", 1), ("west-plaza", 1)
    ]  # fmt: skip
    resolved = view.apply_incident(inc(seq=3, state="resolved", transition="resolved"))
    assert resolved["state"] == "resolved"  # pushed, so a page can drop it
    assert [r["zone_id"] for r in view.incidents()] == ["underpass", "west-plaza"]
    assert view.apply_incident(inc(seq=2, severity="critical")) is None  # never resurrected


def test_silences_are_active_until_they_end_or_are_expired(view, records):
    t = records.t0
    view.apply_silence(records.silence("a", ends_at=t + 10 * MIN))
    view.apply_silence(records.silence("b", ends_at=t + 20 * MIN))
    assert [s["silence_id"] for s in view.silences(t)] == ["a", "b"]
    assert [s["silence_id"] for s in view.silences(t + 15 * MIN)] == ["b"]
    view.apply_silence(records.silence("b", ends_at=t, action="expire"))
    assert view.silences(t + 15 * MIN) == []


def test_unusable_records_are_refused(view, records):
    for bad in (b"not json", b"[1]", json.dumps({**records.zone_state(), "zone_id": "atlantis"})):
        with pytest.raises(Unusable):
            view.apply_zone_state(bad, records.t0)
    with pytest.raises(Unusable):
        view.apply_incident({**records.incident(), "v": 1})
    with pytest.raises(Unusable):
        view.apply_silence({"v": 1, "silence_id": "x"})
    with pytest.raises(Unusable):
        view.apply_ack({"v": 1, "incident_id": "x", "by": "", "ts": records.t0, "action": "ack"})


def test_open_data_is_hourly_mean_and_peak_of_hours_over_an_hour_ago(view, records):
    # Asia/Shanghai: local hours are UTC hours. T0 = 2025-11-24 16:00 UTC = 00:00 local.
    t = records.t0 - records.t0 % 3600_000
    densities = [1.0, 2.0, 3.0, 2.555]
    for i, d in enumerate(densities):  # four records in the first hour
        view.apply_zone_state(records.zone_state(ts=t + i * 15 * MIN, density=d), t)
    view.apply_zone_state(records.zone_state(ts=t + 65 * MIN, density=9.0), t)  # next hour
    view.apply_zone_state(records.zone_state(ts=t + 66 * MIN, density=None), t)  # blind
    assert view.occupancy_rows(t + 2 * 3600_000 - 1) == []  # ended less than an hour ago
    rows = view.occupancy_rows(t + 2 * 3600_000)
    assert rows == [{
        "hour_start": "2025-11-25T00:00:00+08:00", "zone_id": "entrance-east",
        "zone_name": records.site.zone("entrance-east").name, "mean_density": 2.14,
        "peak_density": 3.0, "samples": 4,
    }]  # fmt: skip
    assert len(view.occupancy_rows(t + 3 * 3600_000)) == 2


def test_the_centre_exports_the_sites_open_incidents_by_category_severity_and_state(records):
    from streams.centre.metrics import CentreMetrics
    from streams.centre.reader import Feed

    feed = Feed(CentreView(records.site))
    inc = records.incident
    feed.view.apply_incident(inc(severity="critical"))
    feed.view.apply_incident(inc(zone="underpass", category="technical"))
    feed.view.apply_incident(inc(zone="west-plaza", state="acknowledged"))
    feed.view.apply_incident(inc(zone="ticket-hall", seq=2, state="resolved"))  # not open
    registry = CentreMetrics(feed).registry

    def n(category: str, severity: str, state: str) -> float | None:
        labels = {"category": category, "severity": severity, "state": state}
        return registry.get_sample_value("crowdsafe_incidents_open", labels)

    assert n("crowd", "critical", "open") == 1
    assert n("technical", "warning", "open") == 1
    assert n("crowd", "warning", "acknowledged") == 1
    total = sum(
        s.value
        for f in registry.collect()
        if f.name == "crowdsafe_incidents_open"
        for s in f.samples
    )
    assert total == 3
    # Their alerts by kind and severity: the resolved incident's and a cleared one not counted.
    feed.view.apply_incident(inc(zone="east-plaza", member_state="cleared"))

    def alerts(kind: str, severity: str) -> float | None:
        labels = {"kind": kind, "severity": severity}
        return registry.get_sample_value("crowdsafe_alerts_open", labels)

    assert (alerts("density", "critical"), alerts("density", "warning")) == (1, 2)
    # The centre's own process, as the worker's.
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
