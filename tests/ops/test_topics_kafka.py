"""The app's topics on the real broker: alerts kept for long, whatever the broker's default."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.ops.topics import ensure_topics

pytestmark = pytest.mark.kafka


def retention_ms(bootstrap: str, topic: str) -> str | None:
    """The topic's own retention.ms (None: the broker's default applies)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entry = found["topic"][topic].get("retention.ms")
        return None if entry is None else entry["value"]
    finally:
        admin.close()


def test_alerts_get_long_retention_when_created_and_when_found(pipeline, kafka_bootstrap):
    days = 400  # the default CROWDSAFE_ALERTS_RETENTION_DAYS
    # the record of what happened: alerts, acknowledgements, audit, CAP and every route
    kept = ("alerts", "acks", "audit", "cap", "dispatch.police", "dispatch.maintenance")
    for name in kept:
        topic = pipeline.topic(name)
        assert str(retention_ms(kafka_bootstrap, topic)) == str(days * 86_400_000), topic
    # the inputs that are not a record keep the broker's default
    assert retention_ms(kafka_bootstrap, pipeline.topic("readings")) is None
    # A topic that exists with the broker's default (24 h on the local broker) is corrected.
    old = f"t-{uuid.uuid4().hex[:8]}.alerts"
    ensure_topics(kafka_bootstrap, {old: 1})
    assert retention_ms(kafka_bootstrap, old) is None  # the broker's default
    ensure_topics(kafka_bootstrap, {old: 1}, configs={old: {"retention.ms": "3600000"}})
    assert str(retention_ms(kafka_bootstrap, old)) == "3600000"
