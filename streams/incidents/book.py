"""A zone's incidents as the worker's ``incidents`` table stores them: typed, versioned, msgpack.

One :class:`ZoneBook` per zone that ever had an incident: its active incidents (at most one per
category), the cleared ones waiting for a person to resolve them, its silences, and what the
zone last looked like (blind or not, density, forecast). Escalation timers are wall-clock times
in here, so they survive a restart with the table's changelog. Structs are msgpack arrays: append
new fields at the end with defaults, and bump :data:`VERSION` for anything else.
"""

from __future__ import annotations

import msgspec

VERSION = 1
MAX_RECENTLY_RESOLVED = 50  # remembered to recognise a re-delivered resolution


class BookUnreadable(ValueError):
    """The stored bytes are not a zone book this code can read."""


class MemberState(msgspec.Struct, array_like=True):
    """One member alert: its episode's last transition (the fields of a version 1 alert)."""

    alert_id: str
    kind: str
    severity: str
    state: str  # raised | escalated | cleared
    value: float | None
    threshold: float
    started_at: int
    ts: int
    message: str


class Incident(msgspec.Struct, array_like=True):
    incident_id: str
    category: str
    started_at: int  # event time of its first alert
    state: str = "open"  # open | acknowledged | cleared | resolved
    severity: str = "warning"
    tier: int = 0  # index into the site's escalation tiers
    tier_since_ms: int = 0  # wall clock: when it reached this tier (its deadline runs from here)
    seq: int = 0  # transitions published so far
    last_ts: int = 0  # time of the newest transition: the next is never before it
    members: dict[str, MemberState] = {}
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    resolved_by: str | None = None
    note: str | None = None
    cleared_ms: int | None = None  # wall clock when it cleared (automatic resolution)
    silenced_by: str | None = None
    routes_sent: list[str] = []  # every route it has been sent to (a blind zone tells them)
    blind: bool = False
    opened_at: int = 0  # ts of its first transition (raised)
    announced_seq: int = 0  # seq and ts of its first record sent to a route (0: none yet)
    announced_at: int = 0

    @property
    def active(self) -> bool:
        return self.state in ("open", "acknowledged")

    def active_members(self) -> list[MemberState]:
        return [m for m in self.members.values() if m.state != "cleared"]


class SilenceState(msgspec.Struct, array_like=True):
    silence_id: str
    source_id: str | None
    by: str
    reason: str
    starts_at: int
    ends_at: int

    def covers(self, now_ms: int) -> bool:
        return self.starts_at <= now_ms < self.ends_at


class ZoneBook(msgspec.Struct, array_like=True):
    v: int = VERSION
    incidents: dict[str, Incident] = {}  # active ones and cleared ones not yet resolved
    silences: dict[str, SilenceState] = {}
    blind: bool = False  # no fresh source at the zone's last snapshot
    density: float | None = None
    minutes_to_critical: float | None = None
    down: list[str] = []  # sources stale, offline or faulty at the last snapshot
    # incident id -> (by, ts) of its resolution: a re-delivered resolution is not an error
    resolved: dict[str, tuple[str, int]] = {}

    def active(self, category: str) -> Incident | None:
        return next(
            (i for i in self.incidents.values() if i.category == category and i.active), None
        )

    def remember_resolved(self, inc: Incident, by: str, ts: int) -> None:
        self.incidents.pop(inc.incident_id, None)
        self.resolved[inc.incident_id] = (by, ts)
        while len(self.resolved) > MAX_RECENTLY_RESOLVED:
            self.resolved.pop(next(iter(self.resolved)))


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ZoneBook)


def encode_book(book: ZoneBook) -> bytes:
    """The table's bytes for ``book``.

    >>> book = ZoneBook(blind=True)
    >>> decode_book(encode_book(book)) == book
    True
    """
    return _ENCODER.encode(book)


def decode_book(raw: bytes) -> ZoneBook:
    """A zone book from the table's bytes, or :class:`BookUnreadable`."""
    try:
        book = _DECODER.decode(raw)
    except msgspec.MsgspecError as exc:
        raise BookUnreadable(f"not a zone book: {exc}") from exc
    if book.v != VERSION:
        raise BookUnreadable(f"zone book version {book.v}, this code reads {VERSION}")
    return book
