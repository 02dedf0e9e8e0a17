"""The worker's agent and silence timer: batches of messages to zone state and alerts.

Readings are parsed (bad ones dead-lettered), grouped by zone and applied by the zone processor,
one table read and one write per zone per batch (msgpack bytes: :mod:`streams.zone.state`). A
tick on partition ``p`` makes the agent sweep the site's zones of that partition for silence
(:meth:`streams.zone.processor.ZoneProcessor.sweep`).
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from typing import NoReturn

import faust
from mode import CrashingSupervisor
from mode.utils.logging import get_logger

from streams.schema.intake import Rejected, parse_message
from streams.worker.faust_compat import committed_offset, current_event
from streams.worker.incidents import IncidentDesk, ZoneInputs
from streams.worker.publish import Publisher
from streams.zone.processor import Outcome
from streams.zone.state import StateUnreadable, ZoneState, decode_state, encode_state

log = get_logger(__name__)
EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: an internal error; the supervisor restarts us


def register_agent(w) -> None:  # w: streams.worker.app.WorkerApp (not imported: no cycle)
    app, settings = w.faust, w.settings
    publisher = Publisher(w)
    w.desk = IncidentDesk(w, publisher)

    @app.on_partitions_revoked.connect
    async def forget(app, revoked, **kwargs) -> None:  # noqa: ARG001 - Faust's signal
        w.desk.forget()
        w.offsets.forget(revoked)
        w.metrics.forget_zones()

    @app.agent(w.topics.inputs, name="process", supervisor_strategy=CrashingSupervisor)
    async def process(stream: faust.StreamT) -> None:
        w.health.agent_started()
        try:
            async for events in stream.take_events(500, within=settings.batch_window_s):
                try:
                    await handle_batch(w, publisher, stream, events)
                except Exception:  # noqa: BLE001 - see fail_batch
                    fail_batch(w, events)
                w.health.batch_done()
        finally:
            w.health.agent_stopped()

    if settings.silence_sweep_s > 0:

        @app.timer(interval=settings.silence_sweep_s, on_leader=True)
        async def tick() -> None:
            """One tick per partition, from the leader only: the worker holding the partition
            sweeps its zones (a few messages per interval, whatever the number of zones)."""
            for partition in range(settings.topic_partitions):
                await w.topics.ticks.send(value=b"{}", partition=partition)


def load_zone(w, zone_id: str) -> ZoneState | None:
    """The zone's state from the table (None: never seen). Unreadable bytes (corrupt, or from
    a version this code does not know) are replaced by a fresh state, with a warning and a
    count: the zone re-learns, rather than dead-lettering every reading it gets for ever."""
    raw = w.zones.get(zone_id)
    if raw is None:
        return None
    try:
        return decode_state(raw)
    except StateUnreadable as exc:
        log.warning("zone %s: stored state unreadable, starting it afresh: %s", zone_id, exc)
        w.metrics.state_resets.labels(w.metrics.zone_label(zone_id)).inc()
        fresh = ZoneState()
        w.zones[zone_id] = encode_state(fresh)  # warn once, not on every batch or sweep
        return fresh


def fail_batch(w, events: list) -> NoReturn:
    """Stop the process at once when a batch cannot be handled (the broker refusing a record
    that must be delivered): nothing of this batch is committed, so a restart redoes it.

    Raising instead would be worse twice over: Faust's ``take_events`` acks every event of the
    batch when the generator is closed (its ``finally``), so the failed batch's offsets would be
    committed and its readings lost; and a restarted agent behind a live web page looks healthy.
    A supervisor (systemd, Kubernetes, the demo) restarts the worker; it resumes from the last
    committed offsets and its changelog, and re-delivered readings are dropped by ``seq``.
    """
    log.exception(
        "a batch of %d messages could not be handled: stopping the worker without committing it",
        len(events),
    )
    w.health.agent_stopped()
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)


async def admit_in_order(w, events: list) -> list:
    """The batch's events minus those after an offset the consumer skipped, whose partition is
    sought back so they all come again (streams/worker/offsets.py). Ticks are not guarded: a
    lost tick only delays a sweep."""
    ticks = w.settings.ticks_topic
    guarded = [e for e in events if e.message.topic != ticks]
    before = (w.offsets.gaps_sought, w.offsets.gaps_accepted)
    consumer = w.faust.consumer
    keep, seeks = w.offsets.admit(guarded, committed=lambda tp: committed_offset(consumer, tp))
    for tp, offset in seeks.items():
        log.warning("%s: offsets from %d were skipped by the consumer: seeking back", tp, offset)
        await w.faust.consumer.seek(tp, offset)
    w.metrics.offset_gaps.labels("sought").inc(w.offsets.gaps_sought - before[0])
    w.metrics.offset_gaps.labels("accepted").inc(w.offsets.gaps_accepted - before[1])
    if len(keep) == len(guarded):
        return events
    return [e for e in events if e.message.topic == ticks] + keep


async def handle_batch(w, publisher: Publisher, stream: faust.StreamT, events: list) -> None:
    settings, site, zones = w.settings, w.site, w.zones
    w.metrics.batch.observe(len(events))
    events = await admit_in_order(w, events)
    by_zone: dict[str, list] = defaultdict(list)
    zone_events: dict[str, list[faust.EventT]] = defaultdict(list)
    inputs: dict[str, ZoneInputs] = defaultdict(ZoneInputs)  # acknowledgements, silences
    ticks: dict[int, faust.EventT] = {}
    writes: list[tuple[str, faust.EventT, ZoneState]] = []
    origin: dict[int, faust.EventT] = {}
    controls = (settings.acks_topic, settings.silences_topic)
    for event in events:
        topic = event.message.topic
        if topic == settings.ticks_topic:
            ticks[event.message.partition] = event
            continue
        if await publisher.reroute_if_misplaced(event):
            continue
        if topic in controls:
            try:
                zone_id, item = w.desk.parse(event)
            except Rejected as exc:
                await publisher.dead_letter(event, str(exc), exc.code)
                continue
            inputs[zone_id].items.append((event, item))
            zone_events[zone_id].append(event)
            continue
        try:
            readings = parse_message(event.key, event.value, site)
        except Rejected as exc:
            await publisher.dead_letter(event, str(exc), exc.code)
            continue
        by_zone[readings[0].zone_id].extend(readings)
        zone_events[readings[0].zone_id].append(event)
        # A zone's newest message says whether it is fed simulated data (CAP: Exercise).
        w.simulated[readings[0].zone_id] = readings[-1].simulated
        for r in readings:  # where each came from, should the event-time policy refuse it
            origin[id(r)] = event
    now_ms = int(time.time() * 1000)
    outcomes: dict[str, Outcome] = {}
    for zone_id, readings in by_zone.items():
        # The table's partition is taken from the current event: make it this zone's own event,
        # so a batch spanning partitions reads and writes each zone where it belongs (and
        # restore it before any await: Faust's take buffer reads it).
        try:
            with current_event(stream, zone_events[zone_id][-1]):
                state = load_zone(w, zone_id)
            outcome = w.processor.apply(zone_id, state, readings, now_ms)
        except Exception as exc:  # noqa: BLE001 - one zone's failure must not cost the batch
            log.exception("zone %s: readings could not be processed", zone_id)
            for event in zone_events[zone_id]:
                if event.message.topic not in controls:
                    await publisher.dead_letter(
                        event, f"processing failed: {exc!r}"[:500], "processing"
                    )
            continue
        for rejection in outcome.rejected:  # late, or from the future: dead-lettered alone
            await publisher.dead_letter_reading(origin[id(rejection.reading)], rejection)
        # Alerts and zone states are delivered before the state that records them is written:
        # a crash in between repeats them after the restart rather than losing them.
        await publisher.publish(zone_id, outcome)
        writes.append((zone_id, zone_events[zone_id][-1], outcome.state))
        outcomes[zone_id] = outcome
    books = []
    for zone_id in [*outcomes, *(z for z in inputs if z not in outcomes)]:
        event = zone_events[zone_id][-1]
        try:
            book = await w.desk.handle_zone(
                stream, event, zone_id, outcomes.get(zone_id), inputs.get(zone_id), now_ms
            )
        except Exception as exc:  # noqa: BLE001 - one zone's incidents must not stop the rest
            # Its readings are applied and published; its book is not written (the next batch
            # starts from the one stored), and its acknowledgements and silences are
            # dead-lettered. (A send the broker refuses surfaces in delivered() below, and stops
            # the batch as any such failure does.)
            log.exception("zone %s: incidents could not be updated", zone_id)
            w.metrics.incident_errors.inc()
            for item_event, _ in inputs[zone_id].items if zone_id in inputs else ():
                await publisher.dead_letter(
                    item_event, f"processing failed: {exc!r}"[:500], "processing"
                )
            continue
        if book is not None:
            books.append((zone_id, event, book))
    await publisher.delivered()  # every record this batch sent is on the broker
    # Incidents before zone state: a crash between the two re-delivers the readings, whose
    # alert transitions the book already has (the engine ignores them), rather than dropping
    # them as duplicates while the book never heard of their alerts.
    for zone_id, event, book in books:
        with current_event(stream, event):
            w.desk.write(zone_id, book)
    for zone_id, event, state in writes:
        with current_event(stream, event):
            zones[zone_id] = encode_state(state)
    for partition, event in ticks.items():
        await sweep_partition(w, publisher, stream, event, partition, skip=by_zone)


async def sweep_partition(w, publisher, stream, event, partition: int, skip) -> None:
    """Judge the silent zones of one partition, and its incidents' clocks (its tick is the
    current event: the tables' stores are per partition)."""
    now_ms = int(time.time() * 1000)
    for zone_id in w.zones_by_partition.get(partition, ()):
        with current_event(stream, event):  # the table's store is per partition
            if zone_id in skip or zone_id not in w.zones:
                outcome = None  # it just spoke, or never did
            else:
                outcome = w.processor.sweep(zone_id, load_zone(w, zone_id), now_ms, w.started_ms)
        book = None
        if outcome is not None and outcome.alerts:  # the sweep changes state only so
            await publisher.publish(zone_id, outcome, from_readings=False)
            book = await w.desk.handle_zone(stream, event, zone_id, outcome, None, now_ms)
        book = await w.desk.sweep(stream, event, zone_id, now_ms, book)
        if (outcome is not None and outcome.alerts) or book is not None:
            await publisher.delivered()
        with current_event(stream, event):  # incidents first, as in handle_batch
            if book is not None:
                w.desk.write(zone_id, book)
            if outcome is not None and outcome.alerts:
                w.zones[zone_id] = encode_state(outcome.state)
