"""The command centre's Kafka reader: one kafka-python consumer in a thread, without a consumer
group (every partition assigned, so every centre sees every zone whichever worker owns it),
feeding :class:`streams.centre.view.CentreView` record by record.

* ``crowd.zone-state`` from ``centre_open_data_hours`` back (``offsets_for_times``): the last
  hour's sparklines and the open hourly data;
* ``crowd.alerts`` from the beginning: the open incidents (newest record each, resolved
  dropped), so a restarted centre shows the same ones;
* ``crowd.alerts.ack`` and ``crowd.silences`` from the beginning.

Each record that changes something is handed to ``on_event(kind, data)`` at once (the server
pushes it to the page's event stream). Records read while catching up (before each partition's
end offset at start) take their ``updated_ms`` from the record's broker timestamp, so a zone last
published ten minutes before the centre started is shown stale, not fresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from streams.centre.view import HISTORY_S, CentreView, Unusable
from streams.config.settings import Settings

log = logging.getLogger(__name__)

Event = Callable[[str, dict], None]


def now_ms() -> int:
    return int(time.time() * 1000)


class Feed:
    """The view, the lock around it, and whether the reader has caught up with the topics."""

    def __init__(self, view: CentreView) -> None:
        self.view = view
        self.lock = threading.Lock()
        self.caught_up = threading.Event()
        self.records: dict[str, int] = {}  # read, by topic kind
        self.unusable: dict[str, int] = {}
        self.last_record_ms: int | None = None  # wall clock of the newest record read
        self.error: str | None = None


class Reader(threading.Thread):
    def __init__(self, settings: Settings, feed: Feed, on_event: Event | None = None) -> None:
        super().__init__(name="centre-reader", daemon=True)
        self.settings, self.feed = settings, feed
        self.on_event = on_event or (lambda kind, data: None)
        self._halt = threading.Event()
        self.topics = {
            settings.zone_state_topic: "zone",
            settings.alerts_topic: "incident",
            settings.acks_topic: "ack",
            settings.silences_topic: "silence",
        }

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported by /health, and logged
            self.feed.error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception("centre reader stopped")

    def _consumer(self):
        from kafka import KafkaConsumer

        from streams.config.kafka import client_kwargs

        return KafkaConsumer(
            **client_kwargs(self.settings),
            bootstrap_timeout_ms=int(self.settings.kafka_connect_timeout_s * 1000),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,  # answer soon when nothing is there: pushes stay prompt
        )

    def _partitions(self, consumer) -> list:
        """Every partition of the four topics, waiting for a worker to create them."""
        from kafka import TopicPartition

        warned = False
        while not self._halt.is_set():
            consumer.topics()  # refresh metadata
            found = {t: consumer.partitions_for_topic(t) for t in self.topics}
            missing = [t for t, ps in found.items() if not ps]
            if not missing:
                return [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps)]
            if not warned:
                log.warning("waiting for topics %s (a worker creates them)", ", ".join(missing))
                warned = True
            self._halt.wait(1.0)
        return []

    def _run(self) -> None:
        consumer = self._consumer()
        try:
            tps = self._partitions(consumer)
            if not tps:
                return
            consumer.assign(tps)
            zone_tps = [tp for tp in tps if tp.topic == self.settings.zone_state_topic]
            back_s = max(HISTORY_S, self.settings.centre_open_data_hours * 3600)
            since = consumer.offsets_for_times({tp: now_ms() - back_s * 1000 for tp in zone_tps})
            ends = consumer.end_offsets(tps)
            for tp in tps:
                found = since.get(tp) if tp in since else None
                if tp in since:
                    consumer.seek(tp, found.offset if found is not None else ends[tp])
                else:
                    consumer.seek_to_beginning(tp)
            pending = {tp for tp in tps if consumer.position(tp) < ends[tp]}
            if not pending:
                self.feed.caught_up.set()
            log.info("centre reader: %d partitions assigned, catching up", len(tps))
            while not self._halt.is_set():
                for tp, records in consumer.poll(timeout_ms=200).items():
                    kind = self.topics[tp.topic]
                    for r in records:
                        live = r.offset >= ends[tp]
                        self._handle(kind, r.value, r.timestamp, live)
                if pending:
                    pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
                    if not pending:
                        log.info("centre reader: caught up with the topics")
                        self.feed.caught_up.set()
        finally:
            consumer.close()

    def _handle(self, kind: str, value: Any, broker_ts: int | None, live: bool) -> None:
        feed, wall = self.feed, now_ms()
        feed.records[kind] = feed.records.get(kind, 0) + 1
        feed.last_record_ms = wall
        seen = wall if live or not broker_ts or broker_ts <= 0 else min(wall, broker_ts)
        try:
            with feed.lock:
                view = feed.view
                if kind == "zone":
                    event = view.apply_zone_state(value, seen)
                elif kind == "incident":
                    event = view.apply_incident(value)
                elif kind == "silence":
                    event = view.apply_silence(value)
                else:
                    event = view.apply_ack(value)
        except Unusable as exc:
            feed.unusable[kind] = feed.unusable.get(kind, 0) + 1
            log.debug("unusable %s record: %s", kind, exc)
            return
        if event is not None and kind != "ack":
            self.on_event(kind, event)
