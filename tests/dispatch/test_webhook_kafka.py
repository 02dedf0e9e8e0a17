"""Webhooks end to end on the real broker: Dispatch records on a route's topic are POSTed by the
worker to a local HTTP receiver; the audit trail, the dead letters and the metric say how it went.

The records are written here, as the worker's incident engine would write them (keyed by zone id,
murmur2-partitioned). Two webhook routes in one site: ``cad`` (a receiver that accepts) and
``radio`` (one that always answers 500)."""

from __future__ import annotations

import base64
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.config.paths import bundled_site
from streams.ops.partitioning import partition_of
from streams.schema.incident import Dispatch
from streams.testing import HttpReceiver as Receiver
from streams.testing import Sandbox

pytestmark = pytest.mark.kafka

ZONES = ("ticket-hall", "entrance-east", "metro-stairs")
MAX_ATTEMPTS = 3


def dispatch(route: str, zone: str, seq: int) -> bytes:
    now = int(time.time() * 1000)
    record = Dispatch(
        v=2, incident_id=f"{zone}/crowd/{now - 60_000}", seq=seq, zone_id=zone, zone_name=zone,
        category="crowd", transition="raised" if seq == 1 else "severity-up", state="open",
        severity="warning" if seq == 1 else "critical", tier="grid", ts=now,
        started_at=now - 60_000, opened_at=now - 60_000, announced_seq=1,
        announced_at=now - 60_000, alert_id=None, members=[],
        acknowledged_by=None,
        acknowledged_at=None, resolved_by=None, note=None, blind=False, silenced_by=None,
        routes=[route], held=None, density=4.2, minutes_to_critical=3.5,
        message=f"{zone}: test transition {seq}", route=route,
    )  # fmt: skip
    return msgspec.json.encode(record)


@pytest.fixture(scope="module")
def hooked(kafka_bootstrap: str, tmp_path_factory) -> Iterator[tuple[Sandbox, Receiver, Receiver]]:
    tmp: Path = tmp_path_factory.mktemp("webhook")
    ok, failing = Receiver(200), Receiver(500)
    box = Sandbox(kafka_bootstrap, tmp)
    site = tmp / "site.toml"
    site.write_text(
        bundled_site("guangzhou-station.toml").read_text()
        + f'\n[[routes]]\nid = "cad"\nwebhook = "{ok.url}"\n'
        + f'\n[[routes]]\nid = "radio"\nwebhook = "{failing.url}"\ntimeout_s = 5\n'
        + f"max_attempts = {MAX_ATTEMPTS}\nbackoff_s = 0.05\n"
    )
    box.env.update(CROWDSAFE_SITE=str(site))  # the sandbox has its own topics
    box.ensure_topics()  # the route topics too: the site is the settings'
    try:
        box.start_worker()
        yield box, ok, failing
    finally:
        box.stop_worker()
        ok.stop()
        failing.stop()


def produce(box: Sandbox, route: str, records: list[tuple[str, bytes]]) -> None:
    from kafka import KafkaProducer

    from streams.config.kafka import client_kwargs

    settings = box.settings()
    topic, n = settings.dispatch_topic(route), settings.topic_partitions
    producer = KafkaProducer(**client_kwargs(settings), acks="all")
    try:
        for zone, value in records:
            key = zone.encode()
            producer.send(topic, key=key, value=value, partition=partition_of(key, n)).get(30)
    finally:
        producer.close()


def audits(box: Sandbox, route: str, action: str, n: int) -> list[dict]:
    def enough(values: list[dict]) -> bool:
        return len([a for a in values if (a["route"], a["action"]) == (route, action)]) >= n

    values = box.read("audit", until=enough, timeout=60)
    return [a for a in values if (a["route"], a["action"]) == (route, action)]


def webhook_counts(box: Sandbox) -> dict[tuple[str, str, str | None], float]:
    """(sample name, route, outcome): value, of the webhook counters on the worker's /metrics."""
    url = f"http://127.0.0.1:{box.web_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - loopback
    return {
        (s.name, s.labels["route"], s.labels.get("outcome")): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("crowdsafe_webhook_")
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_each_record_is_posted_as_sent_and_audited(hooked):
    box, ok, _ = hooked
    sent = [(zone, dispatch("cad", zone, seq)) for seq in (1, 2) for zone in ZONES]

    produce(box, "cad", sent)

    delivered = audits(box, "cad", "deliver", len(sent))
    assert sorted(ok.bodies) == sorted(body for _, body in sent)  # byte for byte, each once
    assert len(delivered) == len(sent)
    by_incident = {msgspec.json.decode(body)["incident_id"]: zone for zone, body in sent}
    assert {(a["incident_id"], a["zone_id"]) for a in delivered} == set(by_incident.items())
    assert {a["detail"] for a in delivered} == {"HTTP 200 after 1 attempt"}
    assert all(a["actor"] == "crowdsafe" and a["reason"] is None for a in delivered)
    counts = webhook_counts(box)
    assert counts[("crowdsafe_webhook_deliveries_total", "cad", "delivered")] == len(sent)


def test_a_webhook_failing_every_attempt_is_dead_lettered_audited_and_counted(hooked):
    box, _, failing = hooked
    body = dispatch("radio", "ticket-hall", 1)

    produce(box, "radio", [("ticket-hall", body)])

    [failed] = audits(box, "radio", "delivery-failed", 1)
    reason = f"webhook radio: HTTP 500 Internal Server Error after {MAX_ATTEMPTS} attempts"
    assert failed["reason"] == reason and failed["zone_id"] == "ticket-hall"
    assert failing.bodies == [body] * MAX_ATTEMPTS
    dead = box.read("deadletter", until=lambda values: any(d["reason"] == reason for d in values))
    [letter] = [d for d in dead if d["reason"] == reason]
    assert letter["topic"] == box.settings().dispatch_topic("radio")
    assert base64.b64decode(letter["value_b64"]) == body
    assert base64.b64decode(letter["key_b64"]) == b"ticket-hall"
    counts = webhook_counts(box)
    assert counts[("crowdsafe_webhook_deliveries_total", "radio", "failed")] == 1
    assert counts[("crowdsafe_webhook_retries_total", "radio", None)] == MAX_ATTEMPTS - 1
    assert box.health() == 200  # the worker and its readings agent go on
