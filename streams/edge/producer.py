"""Edge-side producer: readings from cameras, gates and sensors to ``crowd.readings``.

Keyed by ``zone_id`` at the producer so the worker's agents never repartition.
Uses kafka-python, the client the edge machines run.
"""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from streams.config.kafka import client_kwargs
from streams.config.settings import get_settings


class UndeliveredReadings(KafkaError):
    """Messages the broker never confirmed (a broker down for longer than the client's delivery
    timeout, a refusal): said at :meth:`ReadingProducer.close`, never silently dropped."""


class ReadingProducer:
    """Publishes reading dicts (see ``streams.schema.payloads.Reading``) keyed by zone id.

    Every send is tracked: :attr:`failed` counts messages the broker did not confirm, and
    :meth:`close` raises :class:`UndeliveredReadings` if there were any, so a camera or a
    replay never reports readings "sent" that were lost."""

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
        self.sent = self.failed = 0
        self.last_error: BaseException | None = None

    def _track(self, future):
        self.sent += 1
        future.add_errback(self._undelivered)
        return future

    def _undelivered(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = exc

    def _send(self, **kwargs: Any):
        """The client's send; a topic the broker does not know is said as such (kafka-python
        says only "Failed to update metadata after 60.0 secs")."""
        try:
            return self._producer.send(self.topic, **kwargs)
        except KafkaTimeoutError as exc:
            if "metadata" not in str(exc):
                raise
            raise KafkaTimeoutError(
                f"topic {self.topic} unknown to the broker or the broker does not answer ({exc}); "
                "brokers set up by crowdsafe create no topic on first use: `crowdsafe kafka "
                "topics` creates the app's"
            ) from exc

    def send(self, reading: dict[str, Any]) -> None:
        value = json.dumps({"v": 1, **reading}, separators=(",", ":")).encode()
        self._track(self._send(key=reading["zone_id"].encode(), value=value))

    def send_batch(self, readings: list[dict[str, Any]]) -> None:
        """One message for several readings of one zone (a tick of its sources): the worker's
        cost is per message, so batching at the edge multiplies its throughput."""
        zones = {r["zone_id"] for r in readings}
        if len(zones) != 1:
            raise ValueError(f"a batch holds readings of one zone, got {sorted(zones)}")
        value = json.dumps({"v": 1, "readings": readings}, separators=(",", ":")).encode()
        self._track(self._send(key=zones.pop().encode(), value=value))

    def send_raw(self, key: bytes | None, value: bytes | None, partition: int | None = None):
        """Publish bytes as they are (tests and replay of captured traffic), to ``partition``
        if given; the send's future (its ``RecordMetadata``: partition, offset)."""
        return self._track(self._send(key=key, value=value, partition=partition))

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        """Flush, close, and raise :class:`UndeliveredReadings` if any message was lost."""
        self._producer.flush()
        self._producer.close()
        if self.failed:
            raise UndeliveredReadings(
                f"{self.failed} of {self.sent} message(s) not delivered to {self.topic} "
                f"(last error: {type(self.last_error).__name__}: {self.last_error})"
            )

    def __enter__(self) -> ReadingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # already failing: do not hide that error behind this one
            self._producer.close(timeout=5)
            return
        self.close()
