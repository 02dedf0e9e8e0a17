"""The app's topics on the real broker: alerts kept for long, whatever the broker's default."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_kafka_topics_command_creates_the_app_topics_once(kafka_bootstrap, tmp_path):
    """``crowdsafe kafka topics``: the init step of deploy/compose.yaml, on any cluster."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    names = ("readings", "zone_state", "alerts", "deadletter", "acks", "silences", "audit", "cap")
    env = {f"CROWDSAFE_{n.upper()}_TOPIC": f"{prefix}.{n}" for n in names}
    env |= {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CROWDSAFE_APP_ID": prefix,  # the ticks topic: {app_id}.ticks
        "CROWDSAFE_DISPATCH_TOPIC_PREFIX": f"{prefix}.dispatch.",
        "CROWDSAFE_TOPIC_PARTITIONS": "3",
        "CROWDSAFE_STATE_DIR": str(tmp_path),
    }

    def topics(partitions: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "kafka", "topics"],
            env=os.environ | env | {"CROWDSAFE_TOPIC_PARTITIONS": partitions},
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = topics("3")
    assert first.returncode == 0, first.stderr
    assert f"{prefix}.readings" in first.stdout and f"{prefix}.dispatch.police" in first.stdout
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(f"{prefix}.")]
        mine = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(mine)}
    finally:
        admin.close()
    assert mine[f"{prefix}.ticks"] == 3 and set(mine.values()) == {3}
    assert len(mine) >= len(names) + 2  # + ticks and at least one route
    again = topics("3")
    assert (again.returncode, again.stdout.strip()) == (0, "kafka: topics present")
    # Another partition count would mis-route the tables' state: refused, not ignored.
    other = topics("5")
    assert other.returncode == 1 and "TopicPartitionsMismatch" in other.stderr
