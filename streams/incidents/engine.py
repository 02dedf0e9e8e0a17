"""Incidents: a zone's alert transitions, acknowledgements, silences and the wall clock in;
incident transitions, their routes and the audit trail out.

Pure per-zone logic over a :class:`~streams.incidents.book.ZoneBook` (updated in place), like
the zone processor: the worker calls it inside its agent, tests call it directly.

* **Grouping**: a zone's concurrent alerts of one category (``crowd`` or ``technical``, from
  the alert kind) form one incident, ``{zone_id}/{category}/{started_at}``. It clears when every
  member has cleared, and is resolved by a person after that (or automatically, much later).
* **Escalation**: an incident nobody acknowledges moves up one tier of the site's ladder when
  its tier's deadline for its severity passes (wall clock, checked by :meth:`sweep`).
* **Noise control**, after Alertmanager: a warning member's change under a critical incident is
  *inhibited*; a blind zone's crowd transitions are held (*blind*) while its technical ones also
  go to the crowd incident's routes; a silence *silences* a zone (or a source's technical
  alerts) for a bounded time, except a critical density alert, which is always sent. Held
  transitions are published and audited, and sent to no route.

>>> from streams.config.site import load_site
>>> from streams.config.paths import bundled_site
>>> from streams.schema.payloads import Alert
>>> site = load_site(bundled_site())
>>> engine, book = IncidentEngine(site), ZoneBook()
>>> alert = Alert(v=1, alert_id="entrance-east/density/1000", zone_id="entrance-east",
...     zone_name="East entrance", kind="density", severity="critical", state="raised",
...     value=5.1, threshold=4.7, started_at=1000, ts=2000, message="too dense")
>>> out = engine.on_alerts(book, "entrance-east", [alert], None, now_ms=2000)
>>> [(r.transition, r.state, r.severity, r.tier, r.routes) for r in out.records]
[('raised', 'open', 'critical', 'grid', ['police', 'station-staff'])]
>>> out = engine.sweep(book, "entrance-east", now_ms=2000 + 121_000)  # grid: 120 s if critical
>>> [(r.transition, r.tier) for r in out.records]
[('tier-up', 'community')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from streams.config.site import Site, Zone
from streams.incidents.book import Incident, MemberState, SilenceState, ZoneBook
from streams.incidents.routing import routes_for
from streams.schema.incident import Ack, AuditRecord, IncidentAlert, Member, Silence
from streams.schema.payloads import Alert, ZoneState
from streams.zone import alerts as alert_kinds

SYSTEM = "crowdsafe"  # the actor of what the worker does by itself
# How an incident ends or who handles it: told to every route that ever heard of the incident
# (a police console that got "critical" must get "cleared" and "resolved", whatever the
# incident's severity or silences by then), never held back.
_LIFECYCLE = {"acknowledged", "cleared", "resolved", "silenced", "unsilenced", "blind", "sighted"}
MANUAL = "manual"  # the kind of an alert a person raised (always a crowd alert)
# Transitions of the members themselves: held while the zone is blind.
_MEMBER_TRANSITIONS = {"raised", "updated", "severity-up", "cleared"}


class Refused(ValueError):
    """An acknowledgement or silence that cannot be applied; ``str()`` says why."""


@dataclass(slots=True)
class Changes:
    """What one call did: records for ``crowd.alerts`` (each sent to its ``routes``), and
    audit records."""

    records: list[IncidentAlert] = field(default_factory=list)
    audits: list[AuditRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.audits)


class IncidentEngine:
    def __init__(self, site: Site, categories: dict[str, str] | None = None) -> None:
        self.site = site
        self.ladder = site.escalation
        # kind -> category, from the alert kinds' registry (a kind registered later included)
        self.categories = categories or {
            name: kind.category for name, kind in alert_kinds.registry().items()
        }
        self._tz = ZoneInfo(site.site.timezone)
        self._sources = {z: {s.id for s in sources} for z, sources in site.sources_by_zone.items()}

    # --- alerts ---------------------------------------------------------------------------

    def on_alerts(
        self,
        book: ZoneBook,
        zone_id: str,
        alerts: list[Alert],
        snapshot: ZoneState | None,
        now_ms: int,
    ) -> Changes:
        """Alert transitions of one zone (in order) and its latest snapshot, if any."""
        zone, out = self.site.zone(zone_id), Changes()
        if snapshot is not None:
            self._observe(book, zone, snapshot, now_ms, out)
        for alert in alerts:
            self._on_alert(book, zone, alert, now_ms, out)
        return out

    def _observe(
        self, book: ZoneBook, zone: Zone, snap: ZoneState, now_ms: int, out: Changes
    ) -> None:
        """Remember what the zone looks like; tell a crowd incident its zone went blind."""
        book.density, book.minutes_to_critical = snap.density, snap.minutes_to_critical
        s = snap.sources
        book.down = sorted({*s.stale, *s.offline, *(f.source_id for f in s.faulty)})
        blind = snap.occupancy is None
        if blind == book.blind:
            return
        book.blind = blind
        crowd = book.active("crowd")
        if crowd is not None:
            crowd.blind = blind
            self._emit(book, zone, crowd, "blind" if blind else "sighted", snap.ts, now_ms, out)

    def _on_alert(
        self, book: ZoneBook, zone: Zone, alert: Alert, now_ms: int, out: Changes
    ) -> None:
        category = self.categories.get(alert.kind, "crowd")
        inc = book.active(category)
        member = MemberState(
            alert.alert_id,
            alert.kind,
            alert.severity,
            alert.state,
            alert.value,
            alert.threshold,
            alert.started_at,
            alert.ts,
            alert.message,
        )
        if any(i.members.get(alert.alert_id) == member for i in book.incidents.values()):
            return  # this very transition again: readings re-delivered after a crash
        if alert.state == "cleared":
            if inc is None or alert.alert_id not in inc.members:
                return  # an episode from before incidents existed (or a lost one): nothing open
            inc.members[alert.alert_id] = member
            if inc.active_members():
                inc.severity = _worst(inc)
                self._emit(book, zone, inc, "updated", alert.ts, now_ms, out, alert.alert_id)
                return
            inc.state, inc.cleared_ms = "cleared", now_ms
            self._emit(book, zone, inc, "cleared", alert.ts, now_ms, out, alert.alert_id)
            return
        if inc is None:
            inc = Incident(
                incident_id=f"{zone.id}/{category}/{alert.started_at}",
                category=category,
                started_at=alert.started_at,
                severity=alert.severity,
                tier_since_ms=now_ms,
                members={alert.alert_id: member},
                blind=book.blind,
            )
            book.incidents[inc.incident_id] = inc
            self._emit(book, zone, inc, "raised", alert.ts, now_ms, out, alert.alert_id)
            return
        inc.members[alert.alert_id] = member
        before, inc.severity = inc.severity, _worst(inc)
        transition = "severity-up" if inc.severity == "critical" != before else "updated"
        self._emit(book, zone, inc, transition, alert.ts, now_ms, out, alert.alert_id)

    # --- acknowledgements -----------------------------------------------------------------

    def on_ack(self, book: ZoneBook, zone_id: str, ack: Ack, now_ms: int) -> Changes:
        """An acknowledgement or resolution; :class:`Refused` with the reason if it cannot be
        applied (the worker dead-letters it)."""
        zone, out = self.site.zone(zone_id), Changes()
        if ack.action == "raise":
            self._raise_manual(book, zone, ack, now_ms, out)
            return out
        inc = book.incidents.get(ack.incident_id)
        if inc is None:
            done = book.resolved.get(ack.incident_id)
            if done is not None and ack.action == "resolve":
                if done == (ack.by, ack.ts):
                    return out  # this very resolution, delivered again
                raise Refused(f"incident {ack.incident_id} was already resolved by {done[0]}")
            raise Refused(f"unknown incident {ack.incident_id!r} in zone {zone_id}")
        if ack.action == "ack":
            if inc.acknowledged_by is not None:
                if (inc.acknowledged_by, inc.acknowledged_at) != (ack.by, ack.ts):
                    out.audits.append(
                        self._audit(
                            ack.by, "acknowledge", zone, inc, now_ms,
                            f"already acknowledged by {inc.acknowledged_by}", ack.note,
                        )
                    )  # fmt: skip
                return out
            inc.acknowledged_by, inc.acknowledged_at, inc.note = ack.by, ack.ts, ack.note
            if inc.state == "open":
                inc.state = "acknowledged"
            out.audits.append(
                self._audit(ack.by, "acknowledge", zone, inc, now_ms, "acknowledged", ack.note)
            )
            self._emit(book, zone, inc, "acknowledged", now_ms, now_ms, out)
            return out
        sensed = [m for m in inc.active_members() if m.kind != MANUAL]
        if inc.state != "cleared" and sensed:
            raise Refused(
                f"incident {ack.incident_id} is still {inc.state}: it can be resolved once "
                "every alert of it has cleared"
            )
        for m in inc.active_members():  # what a person raised, a person ends
            m.state, m.ts = "cleared", max(m.ts, now_ms)
        self._resolve(book, zone, inc, ack.by, ack.ts, ack.note, now_ms, out)
        return out

    def _raise_manual(self, book: ZoneBook, zone: Zone, ack: Ack, now_ms: int, out) -> None:
        """A person's alert on a zone: a member of kind ``manual`` of its crowd incident."""
        if ack.incident_id != zone.id:
            raise Refused(f"a manual alert names its zone as incident_id ({zone.id!r})")
        if ack.severity is None or not ack.note:
            raise Refused("a manual alert needs a severity and a note saying what is wrong")
        alert_id = f"{zone.id}/{MANUAL}/{ack.ts}"
        if any(alert_id in i.members for i in book.incidents.values()):
            return  # the same message delivered again
        what = f"{zone.name}: {ack.severity.upper()} raised by {ack.by}: {ack.note}"
        alert = Alert(
            v=1, alert_id=alert_id, zone_id=zone.id, zone_name=zone.name, kind=MANUAL,
            severity=ack.severity, state="raised", value=None, threshold=0.0,
            started_at=ack.ts, ts=max(ack.ts, now_ms), message=what,
        )  # fmt: skip
        self._on_alert(book, zone, alert, now_ms, out)
        inc = book.active("crowd")
        assert inc is not None  # _on_alert opened or joined it
        out.audits.insert(0, self._audit(ack.by, "raise", zone, inc, now_ms, what, ack.note))

    def _resolve(self, book, zone, inc, by, ts, note, now_ms, out) -> None:
        inc.state, inc.resolved_by, inc.note = "resolved", by, note
        out.audits.append(self._audit(by, "resolve", zone, inc, now_ms, "resolved", note))
        self._emit(book, zone, inc, "resolved", now_ms, now_ms, out)
        book.remember_resolved(inc, by, ts)

    def refused(self, zone_id: str, item: Ack | Silence, why: str, now_ms: int) -> AuditRecord:
        """The audit record of an acknowledgement or silence that could not be applied."""
        is_ack = isinstance(item, Ack)
        return AuditRecord.of(
            now_ms, item.by, "refused", f"{item.action} refused", zone_id=zone_id,
            incident_id=item.incident_id if is_ack else None,
            silence_id=None if is_ack else item.silence_id, reason=why,
        )  # fmt: skip

    # --- silences -------------------------------------------------------------------------

    def on_silence(self, book: ZoneBook, zone_id: str, silence: Silence, now_ms: int) -> Changes:
        """Create or expire a silence; :class:`Refused` with the reason if it is not valid."""
        zone, out = self.site.zone(zone_id), Changes()
        if silence.zone_id != zone_id:
            raise Refused(f"silence for zone {silence.zone_id!r} keyed by zone {zone_id!r}")
        if silence.action == "expire":
            if book.silences.pop(silence.silence_id, None) is None:
                raise Refused(f"no silence {silence.silence_id!r} in zone {zone_id}")
            out.audits.append(
                self._silence_audit(silence.by, "unsilence", zone, silence, now_ms, "expired")
            )
            self._apply_silences(book, zone, now_ms, out)
            return out
        self._check_new(book, zone, silence, now_ms)
        if silence.silence_id in book.silences:
            return out  # the same silence delivered again
        starts = silence.starts_at if silence.starts_at is not None else silence.ts
        book.silences[silence.silence_id] = SilenceState(
            silence.silence_id, silence.source_id, silence.by, silence.reason, starts,
            silence.ends_at,
        )  # fmt: skip
        until = self._local(silence.ends_at)
        what = f"source {silence.source_id}" if silence.source_id else "zone"
        detail = f"{what} silenced until {until}"
        out.audits.append(self._silence_audit(silence.by, "silence", zone, silence, now_ms, detail))
        self._apply_silences(book, zone, now_ms, out)
        return out

    def _check_new(self, book: ZoneBook, zone: Zone, s: Silence, now_ms: int) -> None:
        starts = s.starts_at if s.starts_at is not None else s.ts
        longest = self.site.incidents.max_silence_s
        if s.source_id is not None and s.source_id not in self._sources[zone.id]:
            raise Refused(f"source {s.source_id!r} does not feed zone {zone.id}")
        if s.ends_at <= starts:
            raise Refused("a silence must end after it starts")
        if s.ends_at <= now_ms:
            raise Refused(f"silence {s.silence_id!r} is already over")
        if s.ends_at - starts > longest * 1000:
            raise Refused(
                f"a silence may last at most {longest:g} s (site incidents.max_silence_s)"
            )
        old = book.silences.get(s.silence_id)
        if old is not None and (old.ends_at, old.source_id) != (s.ends_at, s.source_id):
            raise Refused(f"silence {s.silence_id!r} exists with other terms: expire it first")

    def _silence_for(self, book: ZoneBook, inc: Incident, now_ms: int) -> str | None:
        """The silence that holds ``inc`` back now, if any."""
        if _never_silenced(inc):
            return None
        for s in book.silences.values():
            if not s.covers(now_ms):
                continue
            if s.source_id is None:
                return s.silence_id
            # A source's silence holds technical incidents about that source only.
            if inc.category == "technical" and book.down and set(book.down) <= {s.source_id}:
                return s.silence_id
        return None

    def _apply_silences(self, book: ZoneBook, zone: Zone, now_ms: int, out: Changes) -> None:
        for inc in [i for i in book.incidents.values() if i.active]:
            now = self._silence_for(book, inc, now_ms)
            if now != inc.silenced_by:
                inc.silenced_by = now
                if now is None:  # the ladder paused while silenced: its deadline starts again
                    inc.tier_since_ms = now_ms
                self._emit(
                    book, zone, inc, "silenced" if now else "unsilenced", now_ms, now_ms, out
                )

    # --- the wall clock -------------------------------------------------------------------

    def sweep(self, book: ZoneBook, zone_id: str, now_ms: int) -> Changes:
        """Escalate what nobody acknowledged in time, end silences, resolve long-cleared
        incidents nobody resolved."""
        zone, out = self.site.zone(zone_id), Changes()
        for s in [s for s in book.silences.values() if s.ends_at <= now_ms]:
            del book.silences[s.silence_id]
            out.audits.append(
                self._silence_audit(SYSTEM, "unsilence", zone, s, now_ms, "silence ended")
            )
        self._apply_silences(book, zone, now_ms, out)
        last = len(self.ladder.tiers) - 1
        for inc in list(book.incidents.values()):
            if inc.state == "open" and inc.silenced_by is None:
                # Every deadline passed since the last look (a worker down for a while climbs
                # the tiers it would have climbed), each from when the previous one passed.
                while inc.tier < last:
                    tier = self.ladder.tiers[inc.tier]
                    deadline_s = tier.deadline_s(inc.severity)
                    due = inc.tier_since_ms + int(deadline_s * 1000)
                    if now_ms < due:
                        break
                    inc.tier, inc.tier_since_ms = inc.tier + 1, due
                    detail = f"not acknowledged within {deadline_s:g} s at tier {tier.name}"
                    out.audits.append(self._audit(SYSTEM, "escalate", zone, inc, now_ms, detail))
                    self._emit(book, zone, inc, "tier-up", due, now_ms, out)
            elif inc.state == "cleared" and inc.cleared_ms is not None:
                after = self.site.incidents.auto_resolve_after_s
                if now_ms - inc.cleared_ms >= after * 1000:
                    note = f"cleared {after:g} s ago and not resolved by anyone"
                    self._resolve(book, zone, inc, SYSTEM, now_ms, note, now_ms, out)
        return out

    # --- records --------------------------------------------------------------------------

    def _emit(
        self,
        book: ZoneBook,
        zone: Zone,
        inc: Incident,
        transition: str,
        ts: int,
        now_ms: int,
        out: Changes,
        alert_id: str | None = None,
    ) -> None:
        if transition not in ("silenced", "unsilenced"):  # those set it themselves
            inc.silenced_by = self._silence_for(book, inc, now_ms)
        inc.seq += 1
        inc.last_ts = max(inc.last_ts, ts)
        if inc.seq == 1:
            inc.opened_at = inc.last_ts
        member = inc.members.get(alert_id) if alert_id else None
        held = self._held(book, inc, transition, member)
        routes: list[str] = []
        if held is None:
            kinds = {m.kind for m in inc.members.values()}
            routes = routes_for(
                self.site.routing, self.ladder, zone.id, inc.category, kinds, inc.severity,
                inc.tier,
            )  # fmt: skip
            crowd = book.active("crowd")
            if inc.category == "technical" and book.blind and crowd is not None:
                # Police must know they lost sight of a crowd: its routes hear of the outage.
                routes = sorted({*routes, *crowd.routes_sent})
            if transition in _LIFECYCLE:
                routes = sorted({*routes, *inc.routes_sent})
            inc.routes_sent = sorted({*inc.routes_sent, *routes})
        if routes and not inc.announced_seq:
            inc.announced_seq, inc.announced_at = inc.seq, inc.last_ts
        record = IncidentAlert(
            v=2,
            incident_id=inc.incident_id,
            seq=inc.seq,
            zone_id=zone.id,
            zone_name=zone.name,
            category=inc.category,  # type: ignore[arg-type]
            transition=transition,  # type: ignore[arg-type]
            state=inc.state,  # type: ignore[arg-type]
            severity=inc.severity,  # type: ignore[arg-type]
            tier=self.ladder.tiers[inc.tier].name,
            ts=inc.last_ts,
            started_at=inc.started_at,
            opened_at=inc.opened_at,
            announced_seq=inc.announced_seq or None,
            announced_at=inc.announced_at or None,
            alert_id=alert_id,
            members=[Member(**_fields(m)) for m in inc.members.values()],
            acknowledged_by=inc.acknowledged_by,
            acknowledged_at=inc.acknowledged_at,
            resolved_by=inc.resolved_by,
            note=inc.note,
            blind=inc.blind,
            silenced_by=inc.silenced_by,
            routes=routes,
            held=held,  # type: ignore[arg-type]
            density=book.density,
            minutes_to_critical=book.minutes_to_critical,
            message=self._message(zone, inc, transition, member),
        )
        out.records.append(record)
        detail = f"{transition}: {inc.state}, {inc.severity}, tier {record.tier}"
        why = f"held: {held}" if held else None
        out.audits.append(self._audit(SYSTEM, "transition", zone, inc, now_ms, detail, why))
        for route in routes:
            out.audits.append(
                self._audit(SYSTEM, "route", zone, inc, now_ms, f"{transition} sent", route=route)
            )

    def _held(
        self, book: ZoneBook, inc: Incident, transition: str, member: MemberState | None
    ) -> str | None:
        """Why this transition goes to no route, if it does not."""
        if transition in _LIFECYCLE:
            return None  # who handles it and how it ends; consoles learn when it goes quiet
        if member is not None and member.kind == MANUAL:
            return None  # a person saw it: neither a silence nor a blind zone holds it back
        if inc.silenced_by is not None and not _never_silenced(inc):
            return "silenced"
        if inc.category == "crowd" and book.blind and transition in _MEMBER_TRANSITIONS:
            return "blind"
        inhibited = member is not None and member.severity == "warning" != inc.severity
        if transition == "updated" and inhibited:
            return "inhibited"  # a warning under the incident's critical: no news for dispatch
        return None

    def _message(
        self, zone: Zone, inc: Incident, transition: str, member: MemberState | None
    ) -> str:
        if member is not None and transition in _MEMBER_TRANSITIONS:
            return member.message
        return {
            "tier-up": f"{zone.name}: not acknowledged, escalated to "
            f"{self.ladder.tiers[inc.tier].name}",
            "acknowledged": f"{zone.name}: acknowledged by {inc.acknowledged_by}",
            "resolved": f"{zone.name}: resolved by {inc.resolved_by}",
            "silenced": f"{zone.name}: silenced ({inc.silenced_by})",
            "unsilenced": f"{zone.name}: no longer silenced",
            "blind": f"{zone.name}: zone is blind — no source reporting during this incident",
            "sighted": f"{zone.name}: zone is seen again",
        }.get(transition, f"{zone.name}: {transition}")

    def _audit(
        self,
        actor: str,
        action: str,
        zone: Zone,
        inc: Incident,
        now_ms: int,
        detail: str,
        reason: str | None = None,
        route: str | None = None,
    ) -> AuditRecord:
        return AuditRecord.of(
            now_ms, actor, action, detail,  # type: ignore[arg-type]
            zone_id=zone.id, incident_id=inc.incident_id, route=route, reason=reason,
        )  # fmt: skip

    def _silence_audit(self, actor, action, zone: Zone, s, now_ms: int, detail) -> AuditRecord:
        return AuditRecord.of(
            now_ms, actor, action, detail, zone_id=zone.id, silence_id=s.silence_id,
            reason=s.reason,
        )  # fmt: skip

    def _local(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self._tz).strftime("%Y-%m-%d %H:%M %Z")


_SEVERITY = {"warning": 0, "critical": 1}


def _worst(inc: Incident) -> str:
    """The worst severity of the incident's members still active (its last if none is)."""
    active = inc.active_members()
    if not active:
        return inc.severity
    return max((m.severity for m in active), key=_SEVERITY.__getitem__)


def _never_silenced(inc: Incident) -> bool:
    """A critical density alert is always sent."""
    return any(m.kind == "density" and m.severity == "critical" for m in inc.active_members())


def _fields(m: MemberState) -> dict:
    return {f: getattr(m, f) for f in MemberState.__struct_fields__}
