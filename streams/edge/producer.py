"""Edge-side producer: readings from cameras, gates and sensors to ``crowd.readings``.

Keyed by ``zone_id`` at the producer so the worker's agents never repartition.
Uses kafka-python, the client the edge machines run.
"""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaProducer

from streams.config.kafka import client_kwargs
from streams.config.settings import get_settings


class ReadingProducer:
    """Publishes reading dicts (see ``streams.schema.payloads.Reading``) keyed by zone id."""

    def __init__(self, bootstrap: str | None = None, topic: str | None = None) -> None:
        settings = get_settings()
        self.topic = topic or settings.readings_topic
        client = client_kwargs(settings)  # TLS and SASL as configured
        if bootstrap:
            client["bootstrap_servers"] = bootstrap
        self._producer = KafkaProducer(
            **client,
            bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
            linger_ms=20,  # batch a frame's or a tick's worth of readings per request
            acks="all",
            enable_idempotence=True,  # retries never reorder or duplicate a zone's readings
        )

    def send(self, reading: dict[str, Any]) -> None:
        value = json.dumps({"v": 1, **reading}, separators=(",", ":")).encode()
        self._producer.send(self.topic, key=reading["zone_id"].encode(), value=value)

    def send_batch(self, readings: list[dict[str, Any]]) -> None:
        """One message for several readings of one zone (a tick of its sources): the worker's
        cost is per message, so batching at the edge multiplies its throughput."""
        zones = {r["zone_id"] for r in readings}
        if len(zones) != 1:
            raise ValueError(f"a batch holds readings of one zone, got {sorted(zones)}")
        value = json.dumps({"v": 1, "readings": readings}, separators=(",", ":")).encode()
        self._producer.send(self.topic, key=zones.pop().encode(), value=value)

    def send_raw(self, key: bytes | None, value: bytes | None, partition: int | None = None):
        """Publish bytes as they are (tests and replay of captured traffic), to ``partition``
        if given; the send's future (its ``RecordMetadata``: partition, offset)."""
        return self._producer.send(self.topic, key=key, value=value, partition=partition)

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()

    def __enter__(self) -> ReadingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
