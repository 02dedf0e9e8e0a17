"""The crowdsafe Faust app: readings in, zone state and alerts out.

crowd.readings (keyed by zone_id) ──process──▶ crowd.zone-state
                                      │  └────▶ crowd.alerts
                                      └───────▶ crowd.deadletter
"""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict

import faust
from mode.utils.logging import get_logger

from streams.metrics import WorkerMetrics
from streams.processor import Rejected, ZoneProcessor, parse_message
from streams.settings import get_settings
from streams.site import load_site

log = get_logger(__name__)
settings = get_settings()
site = load_site(settings.site)
processor = ZoneProcessor(site)
metrics = WorkerMetrics()
started_ms = int(time.time() * 1000)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store=settings.store,
    datadir=str(settings.state_dir / "worker" / settings.app_id),
    topic_partitions=settings.topic_partitions,
    web_host="127.0.0.1",
    web_port=settings.web_port,
    producer_linger=0.02,
    autodiscover=False,
)

raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
ticks_topic = app.topic(settings.ticks_topic, partitions=settings.topic_partitions, **raw)
# The agent reads both: a tick keyed by zone id lands in that zone's readings partition (both
# producers hash keys with Kafka's murmur2), so its table writes go to the right changelog.
inputs = app.topic(
    settings.readings_topic, settings.ticks_topic, partitions=settings.topic_partitions, **raw
)
zone_state_topic = app.topic(settings.zone_state_topic, partitions=settings.topic_partitions, **raw)
alerts_topic = app.topic(settings.alerts_topic, partitions=settings.topic_partitions, **raw)
deadletter_topic = app.topic(settings.deadletter_topic, partitions=settings.topic_partitions, **raw)

# Per-zone state (sources, gate integral, alert episodes): changelogged, so a restart recovers it.
zones = app.Table("zones", default=dict, partitions=settings.topic_partitions)

# What the command-centre page shows (this worker's zones; see streams/views.py).
latest_zone_state: dict[str, dict] = {}
recent_alerts: list[dict] = []


def _json(value: dict) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON, and consumers in other languages choke on them.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


async def dead_letter(event: faust.EventT, reason: str, code: str) -> None:
    msg = event.message
    record = {
        "v": 1,
        "reason": reason,
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "key_b64": base64.b64encode(msg.key).decode() if msg.key else None,
        "value_b64": base64.b64encode(msg.value or b"").decode(),
        "received_at": int(time.time() * 1000),
    }
    metrics.rejected.labels(code).inc()
    await deadletter_topic.send(key=msg.key, value=_json(record))


@app.agent(inputs)
async def process(stream: faust.StreamT) -> None:
    async for events in stream.take_events(500, within=0.2):
        metrics.batch.observe(len(events))
        by_zone: dict[str, list] = defaultdict(list)
        zone_events: dict[str, list[faust.EventT]] = defaultdict(list)
        ticks: dict[str, faust.EventT] = {}
        for event in events:
            if event.message.topic == settings.ticks_topic:
                if event.key:
                    ticks[event.key.decode(errors="replace")] = event
                continue
            try:
                latest_ok_ms = int((time.time() + settings.max_future_skew_s) * 1000)
                readings = parse_message(event.key, event.value, site, latest_ok_ms)
            except Rejected as exc:
                await dead_letter(event, str(exc), exc.code)
                continue
            by_zone[readings[0].zone_id].extend(readings)
            zone_events[readings[0].zone_id].append(event)
        for zone_id, readings in by_zone.items():
            # The table's partition is taken from the current event: make it this zone's own
            # event, so a batch spanning partitions reads and writes each zone where it belongs.
            stream._set_current_event(zone_events[zone_id][-1])
            try:
                outcome = processor.apply(
                    zone_id, zones[zone_id], readings, int(time.time() * 1000)
                )
            except Exception as exc:  # noqa: BLE001 - one zone's failure must not cost the batch
                log.exception("zone %s: readings could not be processed", zone_id)
                for event in zone_events[zone_id]:
                    await dead_letter(event, f"processing failed: {exc!r}"[:500], "processing")
                continue
            # Alerts are delivered before the state that records them is written: a crash in
            # between repeats an alert after the restart rather than losing it.
            await publish(zone_id, outcome)
            zones[zone_id] = outcome.state
        for zone_id, event in ticks.items():
            stream._set_current_event(event)  # before the lookup: the store is per partition
            if zone_id in by_zone or zone_id not in site.zone_by_id or zone_id not in zones:
                continue  # it just spoke, or never did
            now_ms = int(time.time() * 1000)
            outcome = processor.sweep(zone_id, zones[zone_id], now_ms, since_ms=started_ms)
            if outcome.alerts:  # the sweep changes state only with a transition
                await publish(zone_id, outcome, from_readings=False)
                zones[zone_id] = outcome.state


if settings.silence_sweep_s > 0:

    @app.timer(interval=settings.silence_sweep_s)
    async def tick() -> None:
        """Wake every zone's partition, so silent zones are judged too (see processor.sweep)."""
        for zone in site.zones:
            await ticks_topic.send(key=zone.id.encode(), value=b"{}")


async def publish(zone_id: str, outcome, from_readings: bool = True) -> None:
    now = time.time()
    for r in outcome.applied:  # accepted readings; re-deliveries count as duplicates only
        metrics.readings.labels(r.kind).inc()
        metrics.lag.observe(max(now - r.ts / 1000, 0))
    metrics.duplicates.inc(outcome.duplicates)
    key = zone_id.encode()
    if outcome.zone_state is not None:
        latest_zone_state[zone_id] = outcome.zone_state
        metrics.observe_zone(outcome.zone_state, from_readings)
    for zone_state in outcome.zone_states:
        # Straight to the transport's producer: many small records per batch, and Faust's
        # topic.send bookkeeping (futures, callbacks) per record costs more than the processing.
        await app.producer.send(
            zone_state_topic.get_topic_name(), key, _json(zone_state), None, None, None
        )
    delivered = []
    for alert in outcome.alerts:
        metrics.alerts.labels(alert["kind"], alert["severity"], alert["state"]).inc()
        recent_alerts.append(alert)
        del recent_alerts[:-200]
        delivered.append(await alerts_topic.send(key=key, value=_json(alert)))
    for fut in delivered:  # alerts are few: wait until the broker has them
        await fut
