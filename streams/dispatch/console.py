"""What a dispatch console knows and shows, without Kafka: the incidents it has seen, their
short handles, de-duplication, filters, and the text of one transition in 80 columns.

Records are incident transitions (:class:`~streams.schema.incident.IncidentAlert`, or a
route's :class:`~streams.schema.incident.Dispatch`). A console rebuilds the open incidents from
a topic alone: the newest record per incident (highest ``seq``), resolved ones dropped. A record
delivered twice (at-least-once) has the same ``(incident_id, transition, ts, seq)`` and is shown
once.
"""

from __future__ import annotations

import json
import textwrap
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import msgspec

from streams.schema.incident import IncidentAlert

WIDTH = 80
SEVERITY_RANK = {"warning": 0, "critical": 1}
SEVERITY_LABEL = {"warning": "WARNING", "critical": "CRITICAL"}
_FIELDS = frozenset(IncidentAlert.__struct_fields__)
DEDUP_KEEP = 100_000  # keys remembered for de-duplication (oldest forgotten first)


class Unreadable(ValueError):
    """A record that is not an incident transition (another version, or garbage)."""


def decode(raw: bytes | str) -> IncidentAlert:
    """An incident transition from a ``crowd.alerts`` (v2) or ``crowd.dispatch.<route>`` record.
    Fields this client does not know (a route's ``route``, a later minor addition) are ignored;
    a record of another version raises :class:`Unreadable`."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise Unreadable(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    if data.get("v") != 2:
        raise Unreadable(f"version {data.get('v')!r}, not an incident transition (v2)")
    try:
        return msgspec.convert({k: v for k, v in data.items() if k in _FIELDS}, IncidentAlert)
    except msgspec.ValidationError as exc:
        raise Unreadable(str(exc)) from None


def dedup_key(rec: IncidentAlert) -> tuple[str, str, int, int]:
    """A redelivered record has the same incident, transition and time; ``seq`` is in the key
    too, as two members of one incident may change at one reading (two ``updated`` records,
    same ``ts``, different ``seq``): both are real."""
    return (rec.incident_id, rec.transition, rec.ts, rec.seq)


def zone_of(incident_id: str) -> str:
    """The zone id of an incident id (``{zone_id}/{category}/{started_at}``): the Ack's key."""
    zone, sep, _ = incident_id.partition("/")
    if not sep or not zone:
        raise ValueError(f"'{incident_id}' is no incident id (zone/category/started_at)")
    return zone


@dataclass(frozen=True)
class Filters:
    """Which transitions a console shows. Empty: all. ``severity`` is a minimum (``warning``
    shows both); ``kinds`` match any member alert's kind; ``zones`` match ids or names."""

    zones: frozenset[str] = frozenset()
    severity: str | None = None
    kinds: frozenset[str] = frozenset()

    def match(self, rec: IncidentAlert) -> bool:
        if self.zones and rec.zone_id not in self.zones and rec.zone_name not in self.zones:
            return False
        if self.severity and SEVERITY_RANK[rec.severity] < SEVERITY_RANK[self.severity]:
            return False
        return not self.kinds or any(m.kind in self.kinds for m in rec.members)


def newer(a: IncidentAlert, b: IncidentAlert | None) -> bool:
    """Whether ``a`` supersedes ``b`` as the incident's current record."""
    return b is None or (a.seq, a.ts) > (b.seq, b.ts)


def open_incidents(records: Iterable[IncidentAlert], filters: Filters = Filters()) -> list:
    """The incidents still open after ``records`` (newest record each, resolved dropped) that
    ``filters`` admit, oldest first."""
    latest: dict[str, IncidentAlert] = {}
    for rec in records:
        if newer(rec, latest.get(rec.incident_id)):
            latest[rec.incident_id] = rec
    out = [r for r in latest.values() if r.state != "resolved" and filters.match(r)]
    return sorted(out, key=lambda r: (r.started_at, r.incident_id))


@dataclass
class Console:
    """The state of one console: incidents seen (newest record each), their handles (1, 2, ...
    in order of first sight) and the de-duplication keys."""

    tz: tzinfo = UTC
    filters: Filters = field(default_factory=Filters)
    incidents: dict[str, IncidentAlert] = field(default_factory=dict)
    handles: dict[str, int] = field(default_factory=dict)
    _by_handle: dict[int, str] = field(default_factory=dict)
    _seen: OrderedDict = field(default_factory=OrderedDict)

    def accept(self, rec: IncidentAlert) -> bool:
        """Take one record; True when it is to be shown (new, and the filters admit it). An
        incident gets its handle when first shown (:meth:`line`, :meth:`open`)."""
        key = dedup_key(rec)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > DEDUP_KEEP:
            self._seen.popitem(last=False)
        if newer(rec, self.incidents.get(rec.incident_id)):
            self.incidents[rec.incident_id] = rec
        return self.filters.match(rec)

    def handle(self, incident_id: str) -> int:
        if incident_id not in self.handles:
            n = len(self.handles) + 1
            self.handles[incident_id] = n
            self._by_handle[n] = incident_id
        return self.handles[incident_id]

    def lookup(self, ref: str) -> IncidentAlert | None:
        """An incident by handle (``3``, ``#3``) or by incident id."""
        ref = ref.lstrip("#")
        incident_id = self._by_handle.get(int(ref)) if ref.isdigit() else ref
        return self.incidents.get(incident_id) if incident_id else None

    def open(self) -> list[IncidentAlert]:
        """Open incidents the filters admit, oldest first (each gets a handle)."""
        out = open_incidents(self.incidents.values(), self.filters)
        for rec in out:
            self.handle(rec.incident_id)
        return out

    def line(self, rec: IncidentAlert, now_ms: int | None = None) -> str:
        return format_transition(rec, self.handle(rec.incident_id), self.tz, now_ms)


# --- text -----------------------------------------------------------------------------------


def local_time(ts_ms: int, tz: tzinfo) -> str:
    """``2025-05-01 18:03:12 CST``: the date and time in the site's zone, with its abbreviation
    (or UTC offset where the zone has none)."""
    t = datetime.fromtimestamp(ts_ms / 1000, tz)
    return t.strftime("%Y-%m-%d %H:%M:%S ") + (t.tzname() or t.strftime("%z"))


def duration(ms: int) -> str:
    """``45s``, ``12m``, ``1h05m``, ``2d03h``."""
    s = max(0, ms // 1000)
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def forecast(minutes: float) -> str:
    """``critical in 4 min``; ``critical now`` once there."""
    if minutes <= 0:
        return "critical now"
    return "critical in <1 min" if minutes < 1 else f"critical in {minutes:.0f} min"


def _clip(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _who(rec: IncidentAlert) -> str:
    if rec.state == "resolved":
        return f"resolved by {rec.resolved_by}" if rec.resolved_by else "resolved"
    if rec.acknowledged_by:
        return f"ack {rec.acknowledged_by}"
    return "NOT ACKED"


def format_transition(
    rec: IncidentAlert, handle: int, tz: tzinfo = UTC, now_ms: int | None = None
) -> str:
    """Two lines of at most 80 columns: the handle, time (site zone, with date), severity,
    transition, tier and who acknowledged; then the zone's name, density, forecast and how long
    the incident has been open (at this transition, or at ``now_ms``)."""
    tag = f"#{handle}"
    head = (
        f"{tag:<4} {local_time(rec.ts, tz)} {SEVERITY_LABEL[rec.severity]:<8} "
        f"{rec.transition:<12} tier {rec.tier}"
    )
    who = _clip(_who(rec), max(12, WIDTH - len(head) - 2))  # a long name gives way to the tier
    head = f"{_clip(head, WIDTH - len(who) - 2)}  {who}"

    facts = []
    if rec.density is not None:
        facts.append(f"{rec.density:.2f} p/m²")
    if rec.minutes_to_critical is not None and rec.state not in ("cleared", "resolved"):
        facts.append(forecast(rec.minutes_to_critical))
    facts.append(f"open {duration((now_ms if now_ms is not None else rec.ts) - rec.started_at)}")
    if rec.blind:
        facts.append("BLIND")
    if rec.category == "technical":
        facts.append("technical")
    rest = "  " + " · ".join(facts)
    indent = "     "
    name = _clip(rec.zone_name or rec.zone_id, WIDTH - len(indent) - len(rest))
    body = _clip(f"{indent}{name}{rest}", WIDTH)
    return f"{head}\n{body}"


def format_details(
    rec: IncidentAlert, handle: int, tz: tzinfo = UTC, now_ms: int | None = None
) -> str:
    """Everything about one incident's current record, members included (``show N``); "open
    for" counts to ``now_ms`` as the one-line view does (to the record's time without it)."""

    def when(ms: int | None) -> str:
        return local_time(ms, tz) if ms is not None else "-"

    rows: list[tuple[str, Any]] = [
        ("incident", f"#{handle} {rec.incident_id}"),
        ("zone", f"{rec.zone_name} ({rec.zone_id})"),
        ("category", rec.category),
        ("state", f"{rec.state} (last transition: {rec.transition}, seq {rec.seq})"),
        ("severity", rec.severity),
        ("tier", rec.tier),
        ("started", when(rec.started_at)),
        ("updated", when(rec.ts)),
        ("open for", duration((now_ms if now_ms is not None else rec.ts) - rec.started_at)),
        ("density", f"{rec.density:.2f} p/m²" if rec.density is not None else "-"),
        (
            "forecast",
            forecast(rec.minutes_to_critical) if rec.minutes_to_critical is not None else "-",
        ),
        (
            "acknowledged",
            f"{rec.acknowledged_by} at {when(rec.acknowledged_at)}"
            if rec.acknowledged_by
            else "no",
        ),
        ("resolved by", rec.resolved_by or "-"),
        ("note", rec.note or "-"),
        ("blind", "yes: the zone has no fresh source" if rec.blind else "no"),
        ("silenced by", rec.silenced_by or "-"),
        ("held", rec.held or "-"),
        ("routes", ", ".join(rec.routes) or "-"),
    ]
    rows.append(("message", rec.message))
    lines = [
        line
        for k, v in rows
        for line in textwrap.wrap(
            str(v), WIDTH, initial_indent=f"{k + ':':<14}", subsequent_indent=" " * 14
        )
    ]
    lines.append(f"members ({len(rec.members)}):")
    for m in rec.members:
        value = f"{m.value:.2f}" if m.value is not None else "-"
        head = f"  {m.kind:<14} {m.severity:<8} {m.state:<9} {value}/{m.threshold:g}"
        lines.append(_clip(f"{head}  since {when(m.started_at)}", WIDTH))
        lines += textwrap.wrap(
            f"{m.message}  [{m.alert_id}]",
            WIDTH,
            initial_indent="    ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def summary_header(count: int, tz: tzinfo, tz_name: str, now_ms: int, what: str) -> str:
    """The line above a new console's summary of open incidents."""
    n = "no open incidents" if count == 0 else f"{count} open incident(s)"
    return _clip(f"== {what}: {n} at {local_time(now_ms, tz)} ({tz_name})", WIDTH)


HELP = """commands:
  ack N [note]      acknowledge incident #N (needs --as NAME)
  resolve N [note]  resolve incident #N once it has cleared (needs --as NAME)
  show N            everything about incident #N, its member alerts included
  list              the open incidents this console knows
  help              this text"""


@dataclass(frozen=True)
class Command:
    verb: str  # ack, resolve, show, list, help
    ref: str | None = None
    note: str | None = None


class CommandError(ValueError):
    pass


def parse_command(line: str) -> Command | None:
    """One line typed at the console; None for a blank line.

    >>> parse_command("ack 3 on my way")
    Command(verb='ack', ref='3', note='on my way')
    """
    words = line.strip().split(maxsplit=2)
    if not words:
        return None
    verb = words[0].lower()
    if verb in ("ack", "resolve", "show"):
        if len(words) < 2:
            raise CommandError(f"{verb} needs an incident number: {verb} N")
        note = words[2].strip() if len(words) > 2 and verb != "show" else None
        return Command(verb, words[1], note or None)
    if verb in ("list", "help", "?"):
        return Command("help" if verb == "?" else verb)
    raise CommandError(f"unknown command '{words[0]}' (help lists them)")


def sorted_by_time(records: Sequence[IncidentAlert]) -> list[IncidentAlert]:
    return sorted(records, key=lambda r: (r.ts, r.incident_id, r.seq))
