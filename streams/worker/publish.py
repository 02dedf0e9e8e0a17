"""What the worker sends: zone states, alerts and dead letters, with their metrics."""

from __future__ import annotations

import base64
import time

import faust
import msgspec
from faust.types import FutureMessage

from streams.dispatch.cap import cap_message_for_site
from streams.ops.partitioning import partition_of
from streams.schema.incident import Dispatch
from streams.schema.intake import MAX_MESSAGE_BYTES
from streams.schema.payloads import SCHEMA_VERSION, DeadLetter
from streams.worker import faust_compat
from streams.zone.processor import Outcome

# Compact UTF-8 JSON straight from the payload Structs. A NaN or infinite float would be written
# as null (JSON has neither): the models' nullable fields are where that can happen, and
# alert_record maps NaN to null explicitly.
to_json = msgspec.json.encode


# Original bytes kept in a dead letter: 512 KiB, 683 KiB as base64, well under the 1 MB limit.
MAX_DEAD_LETTER_VALUE = 512 * 1024
# And of the original key (a zone id: a few dozen bytes), as the record's key and in key_b64: a
# hostile 0.5 MB key next to the value would take the record over the limit.
MAX_DEAD_LETTER_KEY = 1000


async def send_dead_letter(
    w, event: faust.EventT, reason: str, value: bytes | None = None
) -> FutureMessage:
    """Send a dead letter of ``event``'s message, from any topic (or of ``value``, one reading
    of it), with its reason, to ``crowd.deadletter``; the send's future (await it before the
    message's offset may be committed). ``w``: streams.worker.app.WorkerApp.

    A dead letter always fits: the original bytes are cut to :data:`MAX_DEAD_LETTER_VALUE`
    (base64 makes them a third larger, and the producer refuses records over 1 MB), and the
    record says so; the key to :data:`MAX_DEAD_LETTER_KEY`.
    """
    msg = event.message
    original = (msg.value or b"") if value is None else value
    kept = original[:MAX_DEAD_LETTER_VALUE]
    key = msg.key[:MAX_DEAD_LETTER_KEY] if msg.key else msg.key
    record = DeadLetter(
        v=SCHEMA_VERSION,
        reason=reason[:1000],
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key_b64=base64.b64encode(key).decode() if key else None,
        value_b64=base64.b64encode(kept).decode(),
        received_at=int(time.time() * 1000),
        value_bytes=len(original),
        truncated=len(kept) < len(original),
    )
    return await w.topics.deadletter.send(key=key, value=to_json(record))


class Publisher:
    def __init__(self, w) -> None:  # w: streams.worker.app.WorkerApp
        self.w = w
        self._n = w.settings.topic_partitions
        # Records sent in this batch, not yet confirmed by the broker: awaited by
        # :meth:`delivered` before the table records the readings they came from.
        self._pending: list = []
        # Zone-state records (key, value) of this batch, in order, not sent yet (delivered()).
        self._zone_states: list[tuple[bytes, bytes]] = []

    async def dead_letter(
        self, event: faust.EventT, reason: str, code: str, value: bytes | None = None
    ) -> None:
        """Dead-letter ``event``'s message (or ``value``, one reading of it) with its reason
        (:func:`send_dead_letter`), counted by ``code``. Confirmed by :meth:`delivered` before
        the batch is committed."""
        self.w.metrics.rejected.labels(code).inc()
        self._pending.append(await send_dead_letter(self.w, event, reason, value))

    async def dead_letter_reading(self, event: faust.EventT, rejection) -> None:
        """One reading of a message refused by the event-time policy (streams/zone/clock.py)."""
        value = msgspec.json.encode(rejection.reading)
        await self.dead_letter(event, rejection.reason, rejection.code, value)

    async def reroute_if_misplaced(self, event: faust.EventT) -> bool:
        """Send a reading (or an acknowledgement, a silence) on to the partition its key maps to,
        if it is not there; True if so.

        Producers must place a zone's readings with Kafka's murmur2 partitioner; a client with
        another one (kcat's default is CRC32) would split the zone's state across two table
        partitions. The copy is confirmed by :meth:`delivered` before the batch (and with it the
        misplaced original) is committed.
        """
        msg = event.message
        if not msg.key or len(msg.value or b"") > MAX_MESSAGE_BYTES:
            # Rejected later, with its reason, where it is: a message over the size limit may
            # still be over what this producer can send (its request limit is 1,000,000 bytes,
            # the edge's 1 MiB), and a failed send would stop the worker on it for ever.
            return False
        want = partition_of(msg.key, self._n)
        if want == msg.partition:
            return False
        topics = self.w.topics
        own = {t.get_topic_name(): t for t in (topics.readings, topics.acks, topics.silences)}
        topic = own.get(msg.topic, topics.readings)
        fut = await topic.send(key=msg.key, value=msg.value, partition=want)
        self._pending.append(fut)
        self.w.metrics.rerouted.inc()
        return True

    async def publish(self, zone_id: str, outcome: Outcome, from_readings: bool = True) -> None:
        w, metrics = self.w, self.w.metrics
        now = time.time()
        kinds: dict[str, int] = {}
        lag = metrics.lag.observe
        for r in outcome.applied:  # accepted readings; re-deliveries count as duplicates only
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
            lag(max(now - r.ts / 1000, 0))
        for kind, n in kinds.items():  # one labelled counter update per kind, not per reading
            metrics.readings.labels(kind).inc(n)
        metrics.duplicates.inc(outcome.duplicates)
        metrics.seq_resets.inc(outcome.seq_resets)
        key = zone_id.encode()
        if outcome.zone_state is not None:
            w.view.add_zone_state(outcome.zone_state)
            metrics.observe_zone(outcome.zone_state, from_readings)
        # Sent by delivered(), a record batch per partition: many small records per batch, and
        # a send's bookkeeping per record (Faust's or aiokafka's: future, partitioner, metadata
        # wait) costs more than the work.
        self._zone_states.extend((key, to_json(zs)) for zs in outcome.zone_states)
        for alert in outcome.alerts:  # published as incidents (publish_incidents)
            metrics.alerts.labels(alert.kind, alert.severity, alert.state).inc()
            w.view.add_alert(alert)

    async def publish_incidents(self, zone_id: str, changes) -> None:
        """Incident records (streams.incidents.engine.Changes) to ``crowd.alerts``, to each
        route they were sent to and, when sent anywhere, as CAP 1.2 to ``crowd.alerts.cap``;
        audit records to ``crowd.audit``."""
        w, metrics, key = self.w, self.w.metrics, zone_id.encode()
        for record in changes.records:
            metrics.incident_transitions.labels(
                record.category, record.transition, record.severity, record.held or ""
            ).inc()
            w.view.add_incident(record)
            self._pending.append(await w.topics.alerts.send(key=key, value=to_json(record)))
            if record.routes:
                fields = msgspec.structs.asdict(record)
                for route in record.routes:
                    dispatch = Dispatch(**fields, route=route)
                    topic = w.topics.dispatch[route]
                    self._pending.append(await topic.send(key=key, value=to_json(dispatch)))
                    metrics.routed.labels(route).inc()
                drill = w.settings.exercise or w.simulated.get(zone_id, False)
                cap = cap_message_for_site(record, w.site, exercise=drill)
                self._pending.append(await w.topics.cap.send(key=key, value=cap))
        for audit in changes.audits:
            self._pending.append(await w.topics.audit.send(key=key, value=to_json(audit)))

    async def delivered(self) -> None:
        """Wait until the broker has every record sent since the last call: zone states,
        alerts, dead letters and re-routed readings.

        The table (and its changelog) must never record a reading whose zone state or alert is
        not on the broker: a worker killed in between would, after its restart, drop the
        re-delivered reading as a duplicate and its outputs would be lost for good; and no
        offset may be committed before its dead letter or re-routed copy is safe. One wait per
        batch, before its table writes (and so before Faust acks it).
        """
        await self._send_zone_states()
        pending, self._pending = self._pending, []
        if pending:
            # Nothing more comes in this batch: no point in the producer's linger.
            faust_compat.send_now(self.w.faust.producer)
        for fut in pending:
            await fut

    async def _send_zone_states(self) -> None:
        """This batch's zone states, as one record batch per partition (aiokafka's batch API: a
        future per batch, not per record), placed by key as the default partitioner would (a
        zone's records stay in order in its partition)."""
        records, self._zone_states = self._zone_states, []
        if not records:
            return
        producer = faust_compat.aiokafka_producer(self.w.faust.producer)
        topic = self.w.topics.zone_state.get_topic_name()
        n = len(await producer.partitions_for(topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(partition_of(key, n), []).append((key, value))
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    await self._send_batch(producer, batch, topic, partition)
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # the first always fits
            await self._send_batch(producer, batch, topic, partition)

    async def _send_batch(self, producer, batch, topic: str, partition: int) -> None:
        batch.close()  # complete: sent without lingering
        self._pending.append(await producer.send_batch(batch, topic, partition=partition))
