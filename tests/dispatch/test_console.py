"""The dispatch console without Kafka: 80 columns, the site's time zone with the date, the
open incidents rebuilt from a topic's records, de-duplication, filters, commands; and the
after-action timeline of ``crowdsafe incidents export``."""

from __future__ import annotations

import csv
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest

from streams.dispatch import console, samples, timeline
from streams.dispatch.console import Console, Filters, format_transition, open_incidents
from streams.dispatch.samples import MINUTE_MS, incident

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONG_NAMES = (
    "Station main square (holding area at peaks)",
    "Pedestrian underpass under Huanshi West Road",
    "A zone whose name is far longer than any console line could ever hold, really",
)


def _lifecycle(zone="main-square", started_at=1_746_093_600_000, resolved=False):
    """raised, severity-up, acknowledged, cleared (, resolved) of one incident."""
    steps = [
        dict(transition="raised", severity="warning"),
        dict(transition="severity-up", minutes_to_critical=3.0),
        dict(transition="acknowledged", state="acknowledged", acknowledged_by="li.wei"),
        dict(transition="cleared", state="cleared", acknowledged_by="li.wei"),
    ]
    if resolved:
        steps.append(
            dict(transition="resolved", state="resolved", resolved_by="li.wei", note="dispersed")
        )
    return [incident(zone, started_at, i, **kw) for i, kw in enumerate(steps, 1)]


@pytest.mark.parametrize("name", LONG_NAMES)
@pytest.mark.parametrize("who", [None, "li.wei", "Officer Zhang Wei-Ming of the Yuexiu station"])
def test_one_transition_is_two_lines_of_at_most_80_columns(name, who):
    rec = incident(
        zone_name=name, transition="severity-up", tier="community", acknowledged_by=who,
        minutes_to_critical=4.4, seq=9, blind=True,
    )  # fmt: skip
    text = format_transition(rec, 123, SHANGHAI)
    lines = text.splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines), text
    assert lines[0].startswith("#123 ") and "CRITICAL" in lines[0] and "severity-up" in lines[0]
    assert "tier community" in lines[0]
    assert (f"ack {who}"[:10] if who else "NOT ACKED") in lines[0]
    assert name[:25] in lines[1]
    assert "4.91 p/m²" in lines[1] and "critical in 4 min" in lines[1] and "open 8m" in lines[1]
    assert all(len(line) <= 80 for line in console.format_details(rec, 123, SHANGHAI).splitlines())
    assert "BLIND" in lines[1]


def test_times_are_the_sites_with_the_date_and_zone():
    # 2025-05-01 10:30 UTC: 18:30 in Guangzhou, 11:30 summer time in London
    rec = incident(started_at=1_746_095_400_000, seq=1)
    assert console.local_time(rec.ts, SHANGHAI) == "2025-05-01 18:30:00 CST"
    assert console.local_time(rec.ts, ZoneInfo("Europe/London")) == "2025-05-01 11:30:00 BST"
    assert "2025-05-01 18:30:00 CST" in format_transition(rec, 1, SHANGHAI)
    # a zone without an abbreviation shows its offset
    assert console.local_time(rec.ts, ZoneInfo("America/Sao_Paulo")).endswith(" -03")
    # just after midnight local time the date is the local one, not UTC's
    late = 1_746_115_200_000 + 60_000  # 2025-05-01 16:01 UTC = 05-02 00:01 CST
    assert console.local_time(late, SHANGHAI) == "2025-05-02 00:01:00 CST"


def test_the_forecast_says_now_once_critical():
    assert console.forecast(0.0) == "critical now" and console.forecast(0.4) == "critical in <1 min"
    assert console.forecast(12.4) == "critical in 12 min"


def test_how_long_open_is_at_the_transition_or_now():
    rec = incident(seq=1)
    assert "open 0s" in format_transition(rec, 1)
    now = rec.started_at + 125 * MINUTE_MS
    assert "open 2h05m" in format_transition(rec, 1, now_ms=now)
    assert console.duration(3 * 86_400_000 + 3_600_000) == "3d01h"


def test_the_open_incidents_are_the_newest_record_of_each_unresolved_one():
    a = _lifecycle("main-square", 1_746_093_600_000, resolved=True)
    b = _lifecycle("east-plaza", 1_746_093_000_000)[:3]  # acknowledged, still open
    c = _lifecycle("underpass", 1_746_094_000_000)[:1]
    records = [*a, *b, *c]
    found = open_incidents(reversed(records))  # order on the topic does not matter: seq does
    assert [(r.zone_id, r.transition) for r in found] == [
        ("east-plaza", "acknowledged"),  # sorted by when they started
        ("underpass", "raised"),
    ]
    only_critical = open_incidents(records, Filters(severity="critical"))
    assert [r.zone_id for r in only_critical] == ["east-plaza"]


def test_a_console_shows_each_record_once_and_numbers_incidents():
    box = Console(tz=SHANGHAI)
    records = _lifecycle("main-square") + _lifecycle("east-plaza", 1_746_093_900_000)
    shown = [r for r in [*records, *records[:3]] if box.accept(r)]  # redelivered
    assert shown == records
    again = incident("main-square", 1_746_093_600_000, 2, "severity-up")  # same key, new object
    assert not box.accept(again)
    # two members changed at one reading: two records, same transition and time, both shown
    first = incident("underpass", seq=1, ts=1_746_093_600_000)
    one = incident("underpass", seq=2, transition="updated", ts=1_746_093_660_000)
    two = incident("underpass", seq=3, transition="updated", ts=1_746_093_660_000)
    assert box.accept(first) and box.accept(one) and box.accept(two) and not box.accept(two)
    assert box.lookup(first.incident_id).seq == 3
    lines = [box.line(r) for r in shown]
    assert all(line.startswith("#1 ") for line in lines[:4])
    assert all(line.startswith("#2 ") for line in lines[4:])
    assert box.lookup("2").zone_id == "east-plaza" and box.lookup("#1").state == "cleared"
    assert box.lookup("9") is None
    assert box.lookup(records[0].incident_id).seq == 4


def test_filters_by_zone_severity_and_kind():
    box = Console(filters=Filters(zones=frozenset({"East plaza", "underpass"})))
    assert box.accept(incident("east-plaza", zone_name="East plaza"))
    assert box.accept(incident("underpass"))
    assert not box.accept(incident("main-square"))
    crit = Filters(severity="critical")
    assert not crit.match(incident(severity="warning")) and crit.match(incident())
    assert Filters(severity="warning").match(incident())
    offline = Filters(kinds=frozenset({"source-offline"}))
    assert offline.match(incident(category="technical", kinds=("source-offline",)))
    assert not offline.match(incident(kinds=("density", "forecast")))


def test_decode_takes_route_records_and_refuses_other_versions():
    rec = console.decode(samples.encode(incident(route="police")))
    assert rec.routes == ["police"] and type(rec).__name__ == "IncidentAlert"
    with pytest.raises(console.Unreadable, match="version 1"):
        console.decode(json.dumps({"v": 1, "alert_id": "x"}))
    with pytest.raises(console.Unreadable):
        console.decode(b"not json")
    with pytest.raises(console.Unreadable):
        console.decode(json.dumps({"v": 2, "incident_id": "x"}))


def test_commands_parse_and_details_list_members():
    assert console.parse_command("  ") is None
    assert console.parse_command("resolve #2 all clear now") == console.Command(
        "resolve", "#2", "all clear now"
    )
    assert console.parse_command("show 4 x") == console.Command("show", "4")
    for bad in ("ack", "dance 3"):
        with pytest.raises(console.CommandError):
            console.parse_command(bad)
    rec = incident(kinds=("density", "forecast"), acknowledged_by="li.wei",
                   acknowledged_at=1_746_093_660_000, note="on my way")  # fmt: skip
    text = console.format_details(rec, 3, SHANGHAI)
    assert "#3 main-square/crowd/1746093600000" in text and "members (2):" in text
    assert "li.wei at 2025-05-01 18:01:00 CST" in text and "on my way" in text
    assert "[main-square/forecast/1746093600000]" in text
    # "open for" as the one-line view counts it: to now, when given
    later = console.format_details(rec, 3, SHANGHAI, now_ms=rec.started_at + 10 * 60_000)
    assert re.search(r"open for:\s+10m", later), later
    assert console.zone_of("main-square/crowd/1") == "main-square"
    with pytest.raises(ValueError):
        console.zone_of("no-slash")


# --- the after-action timeline ---------------------------------------------------------------


def _audit(ts, action, incident_id="main-square/crowd/1746093600000", **kw):
    rec = {
        "v": 1, "ts": ts, "actor": "crowdsafe", "action": action, "zone_id": "main-square",
        "incident_id": incident_id, "silence_id": None, "route": None, "detail": action,
        "reason": None,
    }  # fmt: skip
    rec.update(kw)
    return json.dumps(rec)


def test_the_timeline_merges_audit_and_alerts_windowed_and_deduplicated():
    t0 = 1_746_093_600_000
    square, plaza = "main-square/crowd/1746093600000", "east-plaza/crowd/1746093900000"
    audit = [
        _audit(t0, "transition", detail="raised: open, warning, tier grid"),
        _audit(t0, "route", route="station-staff"),
        _audit(t0 + 60_000, "acknowledge", actor="li.wei", reason="on my way"),
        _audit(t0 + 60_000, "acknowledge", actor="li.wei", reason="on my way"),  # redelivered
        _audit(t0 + 30_000, "silence", incident_id=None, silence_id="sil-1", reason="drill"),
    ]
    alerts = [  # main square's: told by the audit already; east plaza's: only here
        *_lifecycle(),
        *_lifecycle("east-plaza", 1_746_093_900_000, resolved=True),
    ]
    incidents = timeline.timeline(
        [timeline.audit_event(a, SHANGHAI) for a in audit],
        [timeline.alert_event(samples.encode(a), SHANGHAI) for a in alerts],
    )
    assert list(incidents) == [square, "", plaza]  # by first event
    assert [(e.ts - t0, e.action, e.source) for e in incidents[square]] == [
        (0, "transition", "audit"),
        (0, "route", "audit"),
        (60_000, "acknowledge", "audit"),  # once
    ]
    plaza_events = incidents[plaza]
    assert [e.detail.split(":")[0] for e in plaza_events] == [
        "raised", "severity-up", "acknowledged", "cleared", "resolved",
    ]  # fmt: skip
    assert {e.source for e in plaza_events} == {"alerts"}
    assert plaza_events[2].actor == "li.wei" and plaza_events[-1].reason == "dispersed"
    assert plaza_events[0].actor == "crowdsafe"
    assert incidents[""][0].silence_id == "sil-1"
    window = timeline.timeline(
        [timeline.audit_event(a, SHANGHAI) for a in audit], [], t0 + 1, t0 + 60_001
    )
    assert [e.action for evs in window.values() for e in evs] == ["silence", "acknowledge"]

    rows = list(csv.DictReader(io.StringIO(timeline.to_csv(incidents))))
    assert rows[0]["time"] == "2025-05-01 18:00:00 CST" and rows[0]["incident_id"] == square
    assert len(rows) == 9 and rows[3]["action"] == "silence"
    doc = json.loads(timeline.to_json(incidents, {"site": "s"}))
    assert [i["incident_id"] for i in doc["incidents"]] == [square, plaza]
    assert doc["incidents"][0]["events"][2]["actor"] == "li.wei"
    assert doc["other"][0]["reason"] == "drill"


def test_times_and_durations_of_the_incidents_command():
    assert timeline.parse_time("2025-05-01T18:30", SHANGHAI) == 1_746_095_400_000
    assert timeline.parse_time("2025-05-01T10:30Z", SHANGHAI) == 1_746_095_400_000
    assert timeline.parse_time("2025-05-01", SHANGHAI, end=True) == 1_746_115_200_000
    assert timeline.parse_duration("2h") == 7200 and timeline.parse_duration("30m") == 1800
    for bad in ("", "2 hours", "h"):
        with pytest.raises(ValueError):
            timeline.parse_duration(bad)
    with pytest.raises(ValueError, match="ISO"):
        timeline.parse_time("yesterday", SHANGHAI)
