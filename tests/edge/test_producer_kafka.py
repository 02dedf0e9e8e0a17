"""The edge producer never reports a lost reading as sent."""

from __future__ import annotations

import uuid

import pytest

from streams.edge.producer import ReadingProducer, UndeliveredReadings
from streams.ops.topics import ensure_topics

pytestmark = pytest.mark.kafka

READING = {"source_id": "cam-ticket-hall", "kind": "camera", "zone_id": "ticket-hall",
           "ts": 1_764_000_000_000, "seq": 1, "count": 40}  # fmt: skip


def test_messages_the_broker_refuses_are_counted_and_raised_at_close(kafka_bootstrap):
    # A topic that refuses records over 100 bytes: every reading is refused by the broker
    # after it was handed to the client (the way a long outage ends, without waiting 2 min).
    topic = f"t-{uuid.uuid4().hex[:8]}.tiny"
    ensure_topics(kafka_bootstrap, {topic: 1}, configs={topic: {"max.message.bytes": "100"}})
    producer = ReadingProducer(kafka_bootstrap, topic)
    for seq in range(3):  # one record per batch (kafka-python cannot split a refused batch well)
        producer.send({**READING, "seq": seq, "reason": None})
        producer.flush()
    with pytest.raises(UndeliveredReadings, match="3 of 3 message"):
        producer.close()
    assert producer.failed == producer.sent == 3


def test_delivered_messages_close_quietly(kafka_bootstrap):
    topic = f"t-{uuid.uuid4().hex[:8]}.ok"
    ensure_topics(kafka_bootstrap, {topic: 1})
    with ReadingProducer(kafka_bootstrap, topic) as producer:
        producer.send(READING)
        producer.send_batch([{**READING, "seq": 2}, {**READING, "seq": 3}])
    assert (producer.sent, producer.failed) == (2, 0)
