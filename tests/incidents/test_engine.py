"""The incident engine on its own: grouping, lifecycle, acknowledgement, escalation, routing,
inhibition, blind zones, silences and the audit trail (the bundled site's ladder and rules)."""

from __future__ import annotations

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.incidents.book import ZoneBook, decode_book, encode_book
from streams.incidents.engine import IncidentEngine, Refused
from streams.schema.incident import Ack, IncidentAlert, Silence
from streams.schema.payloads import Alert, SourceStatus, ZoneState

SITE = load_site(bundled_site())
ZONE = "entrance-east"  # queuing: warning 4.0, critical 4.7
T0 = 1_764_000_000_000
MIN = 60_000


def alert(kind="density", severity="warning", state="raised", started=T0, ts=T0, zone=ZONE):
    return Alert(
        v=1,
        alert_id=f"{zone}/{kind}/{started}",
        zone_id=zone,
        zone_name=SITE.zone(zone).name,
        kind=kind,
        severity=severity,
        state=state,
        value=4.1,
        threshold=4.0,
        started_at=started,
        ts=ts,
        message=f"{kind} {severity} {state}",
    )


def snap(ts=T0, occupancy: float | None = 2400.0, stale=(), zone=ZONE) -> ZoneState:
    return ZoneState(
        v=1,
        zone_id=zone,
        name=SITE.zone(zone).name,
        kind="queuing",
        ts=ts,
        occupancy=occupancy,
        area_m2=600,
        density=None if occupancy is None else occupancy / 600,
        los=None,
        warning=4.0,
        critical=4.7,
        sources=SourceStatus(fresh=[], stale=list(stale), offline=[]),
        anomaly_score=None,
        minutes_to_warning=None,
        minutes_to_critical=12.0,
        minutes_to_critical_low=None,
        minutes_to_critical_high=None,
    )


@pytest.fixture
def engine() -> IncidentEngine:
    return IncidentEngine(SITE)


def feed(engine, book, *alerts_, now=T0, snapshot=None) -> list[IncidentAlert]:
    return engine.on_alerts(book, ZONE, list(alerts_), snapshot, now).records


def ack(incident_id, by="officer-li", ts=T0 + MIN, action="ack", note=None) -> Ack:
    return Ack(incident_id=incident_id, by=by, ts=ts, action=action, note=note)


def test_a_zones_concurrent_crowd_alerts_are_one_incident_and_it_clears_with_the_last(engine):
    book = ZoneBook()
    (first,) = feed(engine, book, alert("forecast", "warning"))
    assert (first.transition, first.state, first.seq) == ("raised", "open", 1)
    assert first.incident_id == f"{ZONE}/crowd/{T0}"
    assert first.routes == ["station-staff"]  # a warning: the station's staff only
    (joined,) = feed(engine, book, alert("density", "warning", started=T0 + MIN, ts=T0 + MIN))
    assert (joined.transition, joined.incident_id, len(joined.members)) == (
        "updated", first.incident_id, 2,
    )  # fmt: skip
    (up,) = feed(engine, book, alert("density", "critical", "escalated", T0 + MIN, T0 + 2 * MIN))
    assert (up.transition, up.severity) == ("severity-up", "critical")
    assert up.routes == ["police", "station-staff"]
    (one,) = feed(engine, book, alert("forecast", "warning", "cleared", ts=T0 + 3 * MIN))
    assert (one.transition, one.state) == ("updated", "open")
    (done,) = feed(engine, book, alert("density", "critical", "cleared", T0 + MIN, T0 + 4 * MIN))
    assert (done.transition, done.state, done.severity) == ("cleared", "cleared", "critical")
    assert [r.seq for r in (first, joined, up, one, done)] == [1, 2, 3, 4, 5]
    assert all(r.opened_at == T0 for r in (first, joined, up, one, done))
    # a new breach after clearing is a new incident
    (again,) = feed(engine, book, alert("density", "warning", started=T0 + 9 * MIN))
    assert again.transition == "raised" and again.incident_id != first.incident_id


def test_technical_alerts_are_their_own_incident_routed_to_maintenance(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "warning"))
    (tech,) = feed(engine, book, alert("source-offline", "warning"), snapshot=snap(stale=["cam"]))
    assert tech.category == "technical" and tech.transition == "raised"
    assert tech.routes == ["maintenance"]
    assert len({i.category for i in book.incidents.values()}) == 2


def test_acknowledgement_stops_escalation_and_a_severity_increase_keeps_it(engine):
    book = ZoneBook()
    (raised,) = feed(engine, book, alert("density", "warning"))
    acked = engine.on_ack(book, ZONE, ack(raised.incident_id, note="on my way"), T0 + MIN)
    (rec,) = acked.records
    assert (rec.transition, rec.state, rec.acknowledged_by, rec.note) == (
        "acknowledged", "acknowledged", "officer-li", "on my way",
    )  # fmt: skip
    assert [a.action for a in acked.audits][:1] == ["acknowledge"]
    assert acked.audits[0].actor == "officer-li"
    # no tier-up however long nobody else acts
    assert not engine.sweep(book, ZONE, T0 + 10 * 3_600_000).records
    (up,) = feed(engine, book, alert("density", "critical", "escalated", ts=T0 + 2 * MIN))
    assert (up.transition, up.state, up.acknowledged_by) == (
        "severity-up", "acknowledged", "officer-li",
    )  # fmt: skip
    assert up.routes == ["police", "station-staff"]  # told again


def test_a_repeated_acknowledgement_is_quiet_and_a_second_person_is_audited(engine):
    book = ZoneBook()
    (raised,) = feed(engine, book, alert())
    first = ack(raised.incident_id)
    engine.on_ack(book, ZONE, first, T0 + MIN)
    assert not engine.on_ack(book, ZONE, first, T0 + 2 * MIN)  # the same message re-delivered
    other = engine.on_ack(book, ZONE, ack(raised.incident_id, by="officer-wang"), T0 + 2 * MIN)
    assert not other.records
    assert other.audits[0].detail == "already acknowledged by officer-li"


def test_resolution_needs_a_cleared_incident_and_unknown_ones_are_refused(engine):
    book = ZoneBook()
    (raised,) = feed(engine, book, alert())
    with pytest.raises(Refused, match="still open"):
        engine.on_ack(book, ZONE, ack(raised.incident_id, action="resolve"), T0 + MIN)
    with pytest.raises(Refused, match="unknown incident"):
        engine.on_ack(book, ZONE, ack(f"{ZONE}/crowd/1"), T0 + MIN)
    feed(engine, book, alert(state="cleared", ts=T0 + 5 * MIN))
    resolve = ack(raised.incident_id, action="resolve", note="queue dispersed")
    (rec,) = engine.on_ack(book, ZONE, resolve, T0 + 6 * MIN).records
    assert (rec.transition, rec.state, rec.resolved_by) == ("resolved", "resolved", "officer-li")
    assert book.incidents == {}
    assert not engine.on_ack(book, ZONE, resolve, T0 + 7 * MIN)  # re-delivered: quiet
    with pytest.raises(Refused, match="already resolved by officer-li"):
        engine.on_ack(book, ZONE, ack(raised.incident_id, "x", action="resolve"), T0 + 7 * MIN)


def test_the_ladder_climbs_by_wall_clock_per_severity_and_stops_at_the_top(engine):
    book = ZoneBook()
    (raised,) = feed(engine, book, alert("density", "warning"), now=T0)
    assert raised.tier == "grid"
    assert not engine.sweep(book, ZONE, T0 + 599_000).records  # grid: 600 s for a warning
    (up,) = engine.sweep(book, ZONE, T0 + 600_000).records
    assert (up.transition, up.tier, up.routes) == ("tier-up", "community", ["station-staff"])
    feed(engine, book, alert("density", "critical", "escalated", ts=T0), now=T0 + 601_000)
    # community: 300 s for a critical, counted from reaching the tier
    assert not engine.sweep(book, ZONE, T0 + 899_000).records
    (street,) = engine.sweep(book, ZONE, T0 + 900_000).records
    assert street.tier == "street"
    (district,) = engine.sweep(book, ZONE, T0 + 1_500_000).records
    assert district.tier == "district"
    assert not engine.sweep(book, ZONE, T0 + 100 * 3_600_000).records  # the top tier stays


def test_a_warning_reaching_the_street_tier_goes_to_police(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "warning"), now=T0)
    engine.sweep(book, ZONE, T0 + 600_000)  # community
    (street,) = engine.sweep(book, ZONE, T0 + 600_000 + 900_000).records
    assert (street.tier, street.routes) == ("street", ["police", "station-staff"])


def test_metro_zones_also_go_to_the_metro(engine):
    book = ZoneBook()
    records = engine.on_alerts(book, "metro-stairs", [alert(zone="metro-stairs")], None, T0)
    assert records.records[0].routes == ["metro", "station-staff"]


def test_a_warning_under_a_critical_incident_is_inhibited(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "critical"))
    (forecast,) = feed(engine, book, alert("forecast", "warning"))
    assert (forecast.transition, forecast.held, forecast.routes) == ("updated", "inhibited", [])


def test_a_blind_zone_holds_crowd_transitions_and_tells_the_crowd_routes(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "critical"), snapshot=snap())
    blind_snap = snap(ts=T0 + MIN, occupancy=None, stale=["cam-entrance-east"])
    out = engine.on_alerts(
        book, ZONE, [alert("source-offline", "critical", ts=T0 + MIN)], blind_snap, T0 + MIN
    )
    crowd, tech = out.records
    assert (crowd.transition, crowd.blind, crowd.category) == ("blind", True, "crowd")
    assert crowd.routes == ["police", "station-staff"]
    # the outage goes to maintenance and to everyone following the crowd
    assert tech.category == "technical"
    assert tech.routes == ["maintenance", "police", "station-staff"]
    (held,) = feed(engine, book, alert("forecast", "critical", ts=T0 + 2 * MIN))
    assert held.held == "blind" and held.routes == []
    (sighted,) = engine.on_alerts(book, ZONE, [], snap(ts=T0 + 3 * MIN), T0 + 3 * MIN).records
    assert (sighted.transition, sighted.blind) == ("sighted", False)


def silence(sid="s1", ends=T0 + 3_600_000, source=None, action="create", **kw) -> Silence:
    return Silence(
        silence_id=sid, zone_id=ZONE, source_id=source, by="supervisor-chen",
        reason="planned event", ts=T0, ends_at=ends, action=action, **kw,
    )  # fmt: skip


def test_a_silenced_zone_records_but_routes_nothing_except_critical_density(engine):
    book = ZoneBook()
    out = engine.on_silence(book, ZONE, silence(), T0)
    assert not out.records and out.audits[0].action == "silence"
    (rec,) = feed(engine, book, alert("forecast", "warning"), now=T0 + MIN)
    assert (rec.held, rec.silenced_by, rec.routes) == ("silenced", "s1", [])
    assert rec.announced_seq is None  # sent nowhere yet
    (crit,) = feed(engine, book, alert("density", "critical"), now=T0 + 2 * MIN)
    assert crit.held is None and crit.routes == ["police", "station-staff"]
    assert crit.silenced_by is None  # a critical density alert is never silenced
    assert (crit.announced_seq, crit.announced_at) == (crit.seq, crit.ts) == (2, T0)


def test_a_silence_ends_on_time_or_when_expired_and_the_incident_says_so(engine):
    book = ZoneBook()
    feed(engine, book, alert("forecast", "warning"), now=T0)
    (on,) = engine.on_silence(book, ZONE, silence(ends=T0 + 10 * MIN), T0 + MIN).records
    assert (on.transition, on.silenced_by) == ("silenced", "s1")
    # the ladder paused while silenced: grid's 600 s run again from the end of the silence
    (off,) = engine.sweep(book, ZONE, T0 + 10 * MIN).records
    assert (off.transition, off.silenced_by) == ("unsilenced", None)
    (up,) = engine.sweep(book, ZONE, T0 + 20 * MIN).records
    assert (up.transition, up.held, up.routes) == ("tier-up", None, ["station-staff"])
    engine.on_silence(book, ZONE, silence("s2"), T0 + 21 * MIN)
    out = engine.on_silence(book, ZONE, silence("s2", action="expire"), T0 + 22 * MIN)
    assert [r.transition for r in out.records] == ["unsilenced"]
    assert out.audits[0].action == "unsilence"


def test_a_source_silence_holds_only_technical_alerts_about_that_source(engine):
    book = ZoneBook()
    engine.on_silence(book, ZONE, silence(source="cam-entrance-east"), T0)
    off = snap(stale=["cam-entrance-east"])
    (tech,) = feed(engine, book, alert("source-offline", "warning"), snapshot=off)
    assert tech.held == "silenced"
    (crowd,) = feed(engine, book, alert("forecast", "warning"))
    assert crowd.held is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"ends": T0 - 1}, "must end after it starts"),
        ({"ends": T0 + 2 * 86_400_000}, "at most 86400 s"),
        ({"source": "cam-ticket-hall"}, "does not feed zone"),
        ({"ends": T0 + 1000, "starts_at": T0 - 5000}, "already over"),
    ],
)
def test_silences_out_of_bounds_are_refused(engine, bad, why):
    with pytest.raises(Refused, match=why):
        engine.on_silence(ZoneBook(), ZONE, silence(**bad), T0 + 2000)


def test_a_cleared_incident_nobody_resolves_is_resolved_after_a_day(engine):
    book = ZoneBook()
    feed(engine, book, alert(), now=T0)
    feed(engine, book, alert(state="cleared", ts=T0 + MIN), now=T0 + MIN)
    assert not engine.sweep(book, ZONE, T0 + MIN + 86_399_000).records
    (auto,) = engine.sweep(book, ZONE, T0 + MIN + 86_400_000).records
    assert (auto.transition, auto.resolved_by) == ("resolved", "crowdsafe")
    assert book.incidents == {}


def test_transition_times_never_go_back_and_every_change_is_audited(engine):
    book = ZoneBook()
    out = engine.on_alerts(book, ZONE, [alert(ts=T0 + 5 * MIN)], None, T0 + 5 * MIN)
    late = engine.on_alerts(book, ZONE, [alert("forecast", ts=T0)], None, T0 + 6 * MIN)
    assert late.records[0].ts == out.records[0].ts == T0 + 5 * MIN
    actions = [a.action for a in out.audits]
    assert actions == ["transition", "route"]
    assert out.audits[1].route == "station-staff"


def test_the_book_round_trips_through_the_table_encoding(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "critical"), snapshot=snap())
    engine.on_silence(book, ZONE, silence(), T0)
    again = decode_book(encode_book(book))
    assert again == book
    # and the engine goes on from the decoded copy exactly as from the original
    a = engine.sweep(again, ZONE, T0 + 200_000).records
    b = engine.sweep(book, ZONE, T0 + 200_000).records
    assert msgspec.to_builtins(a) == msgspec.to_builtins(b) and a[0].transition == "tier-up"


def test_a_person_raises_a_manual_alert_and_a_person_ends_it(engine):
    book = ZoneBook()
    manual = Ack(incident_id=ZONE, by="guard-zhao", ts=T0, action="raise",
                 severity="critical", note="fight near gate 3")  # fmt: skip
    out = engine.on_ack(book, ZONE, manual, T0)
    (rec,) = out.records
    assert (rec.transition, rec.category, rec.severity) == ("raised", "crowd", "critical")
    assert rec.members[0].kind == "manual" and "fight near gate 3" in rec.message
    assert out.audits[0].action == "raise" and out.audits[0].actor == "guard-zhao"
    assert rec.routes == ["police", "station-staff"]
    assert not engine.on_ack(book, ZONE, manual, T0 + 1000)  # delivered again: nothing new
    # a sensor alert joins it; the incident can be resolved only when that one has cleared
    feed(engine, book, alert("density", "warning", ts=T0 + MIN))
    end = ack(rec.incident_id, "guard-zhao", T0 + 2 * MIN, "resolve", "calm again")
    with pytest.raises(Refused, match="still open"):
        engine.on_ack(book, ZONE, end, T0 + 2 * MIN)
    feed(engine, book, alert("density", "warning", "cleared", ts=T0 + 3 * MIN))
    (done,) = engine.on_ack(book, ZONE, end, T0 + 4 * MIN).records
    assert (done.transition, done.state) == ("resolved", "resolved")
    assert all(m.state == "cleared" for m in done.members)


def test_a_manual_alert_needs_its_zone_a_severity_and_a_note(engine):
    base = {"by": "x", "ts": T0, "action": "raise"}
    with pytest.raises(Refused, match="names its zone"):
        engine.on_ack(ZoneBook(), ZONE, Ack(incident_id="ticket-hall", severity="warning",
                                            note="n", **base), T0)  # fmt: skip
    with pytest.raises(Refused, match="needs a severity and a note"):
        engine.on_ack(ZoneBook(), ZONE, Ack(incident_id=ZONE, severity="warning", **base), T0)


def test_the_routes_that_heard_of_an_incident_hear_how_it_ends(engine):
    """Police got the critical; the incident falls back to warning (their rule no longer
    matches), is acknowledged, clears and is resolved: they hear each of these."""
    book = ZoneBook()
    feed(engine, book, alert("forecast", "warning"))
    started = T0 + MIN
    feed(engine, book, alert("density", "critical", started=started, ts=started))
    (down,) = feed(engine, book, alert("density", "critical", "cleared", started, T0 + 2 * MIN))
    assert down.severity == "warning" and down.routes == ["station-staff"]
    (acked,) = engine.on_ack(book, ZONE, ack(down.incident_id), T0 + 3 * MIN).records
    (gone,) = feed(engine, book, alert("forecast", "warning", "cleared", ts=T0 + 4 * MIN))
    end = ack(down.incident_id, action="resolve", ts=T0 + 5 * MIN)
    (done,) = engine.on_ack(book, ZONE, end, T0 + 5 * MIN).records
    for rec in (acked, gone, done):
        assert rec.routes == ["police", "station-staff"], rec.transition


def test_a_silence_never_hides_how_an_incident_police_heard_of_ends(engine):
    book = ZoneBook()
    engine.on_silence(book, ZONE, silence(), T0)
    (crit,) = feed(engine, book, alert("density", "critical"))
    assert crit.routes == ["police", "station-staff"]  # a critical density: never silenced
    (gone,) = feed(engine, book, alert("density", "critical", "cleared", ts=T0 + MIN))
    assert (gone.transition, gone.held) == ("cleared", None)
    assert gone.routes == ["police", "station-staff"]


def test_an_alert_transition_seen_again_changes_nothing(engine):
    """Readings re-delivered after a crash between the worker's two table writes."""
    book = ZoneBook()
    first = alert("density", "warning")
    feed(engine, book, first)
    assert feed(engine, book, first) == []
    assert next(iter(book.incidents.values())).seq == 1


def test_the_ladder_catches_up_after_the_worker_was_down(engine):
    book = ZoneBook()
    feed(engine, book, alert("density", "critical"), now=T0)
    # down for an hour: grid (120 s), community (300 s), street (600 s) all passed
    records = engine.sweep(book, ZONE, T0 + 3_600_000).records
    assert [(r.tier, r.ts) for r in records] == [
        ("community", T0 + 120_000), ("street", T0 + 420_000), ("district", T0 + 1_020_000),
    ]  # fmt: skip


def test_a_silenced_incident_does_not_climb_the_ladder(engine):
    book = ZoneBook()
    engine.on_silence(book, ZONE, silence(ends=T0 + 3_600_000), T0)
    feed(engine, book, alert("forecast", "warning"), now=T0)
    assert not engine.sweep(book, ZONE, T0 + 3_000_000).records
