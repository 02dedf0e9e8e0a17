"""The worker's side of incidents: the ``incidents`` table, the engine, and what it publishes.

Per zone and batch, after the zone processor: its alert transitions and snapshot go to the
incident engine (streams/incidents/engine.py), then its acknowledgements and silences in arrival
order. Incident records go to ``crowd.alerts`` and to the routes they were sent to, audit
records to ``crowd.audit``; the zone's book is written after the batch's records are on the
broker (as zone state is), so a crash repeats transitions rather than losing them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import faust

from streams.incidents.book import BookUnreadable, ZoneBook, decode_book, encode_book
from streams.incidents.engine import Changes, IncidentEngine, Refused
from streams.schema.incident import Ack, Silence
from streams.schema.intake import Rejected, parse_keyed
from streams.worker.faust_compat import current_event
from streams.zone.processor import Outcome

log = logging.getLogger(__name__)


@dataclass
class ZoneInputs:
    """One zone's acknowledgements and silences of a batch, in arrival order."""

    items: list[tuple[faust.EventT, Ack | Silence]] = field(default_factory=list)


class IncidentDesk:
    def __init__(self, w, publisher) -> None:  # w: streams.worker.app.WorkerApp
        self.w, self.publisher = w, publisher
        self.engine = IncidentEngine(w.site)
        self.table = w.incidents
        # Zone -> blind at its book's last look: a batch with no alert loads the book only
        # when this changes (or the zone was not seen since start or the last rebalance).
        self._blind: dict[str, bool] = {}

    def forget(self) -> None:
        """Partitions moved: what this worker remembers of other zones' books may be old."""
        self._blind.clear()

    def parse(self, event: faust.EventT) -> tuple[str, Ack | Silence]:
        """An acknowledgement or silence and its zone, or :class:`Rejected`."""
        msg = event.message
        model = Ack if msg.topic == self.w.settings.acks_topic else Silence
        item = parse_keyed(msg.key, msg.value, self.w.site, model)
        zone_id = msg.key.decode()
        if isinstance(item, Ack) and item.incident_id.split("/", 1)[0] != zone_id:
            raise Rejected(
                f"incident {item.incident_id[:200]!r} is not of zone {zone_id!r} (the key)", "key"
            )
        return zone_id, item

    def needs_book(self, zone_id: str, outcome: Outcome | None, inputs: ZoneInputs | None) -> bool:
        if inputs and inputs.items:
            return True
        if outcome is None:
            return False
        if outcome.alerts or zone_id not in self._blind:
            return True
        snap = outcome.zone_state
        return snap is not None and (snap.occupancy is None) != self._blind[zone_id]

    def load(self, zone_id: str) -> ZoneBook:
        raw = self.table.get(zone_id)
        if raw is None:
            return ZoneBook()
        try:
            return decode_book(raw)
        except BookUnreadable as exc:
            log.warning("zone %s: stored incidents unreadable, starting afresh: %s", zone_id, exc)
            self.w.metrics.state_resets.labels(self.w.metrics.zone_label(zone_id)).inc()
            return ZoneBook()

    async def handle_zone(
        self,
        stream: faust.StreamT,
        event: faust.EventT,
        zone_id: str,
        outcome: Outcome | None,
        inputs: ZoneInputs | None,
        now_ms: int,
    ) -> ZoneBook | None:
        """Feed one zone's batch to the engine and publish what it did; the book to write
        after the batch is delivered (None: nothing changed)."""
        if not self.needs_book(zone_id, outcome, inputs):
            return None
        with current_event(stream, event):
            book = self.load(zone_id)
        before = encode_book(book)
        changes = Changes()
        self._latest_numbers(book, zone_id)
        if outcome is not None:
            found = self.engine.on_alerts(book, zone_id, outcome.alerts, outcome.zone_state, now_ms)
            changes.records += found.records
            changes.audits += found.audits
        for item_event, item in inputs.items if inputs else ():
            try:
                if isinstance(item, Ack):
                    found = self.engine.on_ack(book, zone_id, item, now_ms)
                else:
                    found = self.engine.on_silence(book, zone_id, item, now_ms)
            except Refused as exc:
                await self.publisher.dead_letter(item_event, str(exc), "refused")
                changes.audits.append(self.engine.refused(zone_id, item, str(exc), now_ms))
                continue
            changes.records += found.records
            changes.audits += found.audits
        self._blind[zone_id] = book.blind
        await self.publisher.publish_incidents(zone_id, changes)
        return book if encode_book(book) != before else None

    async def sweep(
        self,
        stream: faust.StreamT,
        event: faust.EventT,
        zone_id: str,
        now_ms: int,
        book: ZoneBook | None = None,
    ) -> ZoneBook | None:
        """Escalation, silences ending, automatic resolution, for a zone with a book (``book``:
        one just changed in this sweep); the book to write, if anything changed."""
        changed = book is not None
        if book is None:
            with current_event(stream, event):
                if self.table.get(zone_id) is None:
                    return None
                book = self.load(zone_id)
        self._latest_numbers(book, zone_id)
        changes = self.engine.sweep(book, zone_id, now_ms)
        if changes:
            await self.publisher.publish_incidents(zone_id, changes)
        return book if changes or changed else None

    def _latest_numbers(self, book: ZoneBook, zone_id: str) -> None:
        """The zone's density and forecast as this worker last published them, so an
        acknowledgement or a tier-up tells today's numbers, not those of the last alert."""
        snap = self.w.view.zone_states.get(zone_id)
        if snap is not None:
            book.density, book.minutes_to_critical = snap.density, snap.minutes_to_critical

    def write(self, zone_id: str, book: ZoneBook) -> None:
        self.table[zone_id] = encode_book(book)
