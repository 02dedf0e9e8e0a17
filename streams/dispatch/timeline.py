"""After-action review without Kafka: the timeline of each incident from ``crowd.audit``
records (who, what, when, why) and ``crowd.alerts`` transitions, windowed and written as CSV
or JSON (``crowdsafe incidents export``); plus the time and duration arguments of
``crowdsafe incidents``.

The audit trail is the primary source; an incident the audit does not tell (its transitions
are not there: the audit topic started later, or was lost) is told from ``crowd.alerts``, so an
export is complete either way. A record delivered twice appears once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo

from streams.dispatch.console import Unreadable, decode, local_time

COLUMNS = (
    "incident_id", "zone_id", "ts", "time", "actor", "action", "detail", "reason", "route",
    "silence_id", "source",
)  # fmt: skip


@dataclass(frozen=True)
class Event:
    incident_id: str  # "" for what concerns no incident (a silence)
    zone_id: str
    ts: int  # epoch ms
    time: str  # ts in the site's time zone
    actor: str
    action: str
    detail: str
    reason: str
    route: str
    silence_id: str
    source: str  # "audit" or "alerts"


def parse_time(text: str, tz: tzinfo, end: bool = False) -> int:
    """Epoch ms of an ISO date or date-time; in ``tz`` when it has no offset. A bare date is
    its midnight, or with ``end`` the next midnight (``--to 2025-05-01`` includes that day).

    >>> from zoneinfo import ZoneInfo
    >>> parse_time("2025-05-01T08:00", ZoneInfo("Asia/Shanghai"))
    1746057600000
    >>> parse_time("2025-05-01", ZoneInfo("UTC"), end=True) - parse_time("2025-05-01", ZoneInfo("UTC"))
    86400000
    """
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            t = datetime(day.year, day.month, day.day, tzinfo=tz)
        else:
            t = datetime.fromisoformat(text)
            if t.tzinfo is None:
                t = t.replace(tzinfo=tz)
    except ValueError:
        raise ValueError(f"'{text}' is no ISO date or date-time (2025-05-01, 2025-05-01T18:30, "
                         "2025-05-01T18:30+08:00)") from None  # fmt: skip
    return int(t.timestamp() * 1000)


def parse_duration(text: str) -> float:
    """Seconds of ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``.

    >>> parse_duration("1h30m"), parse_duration("45s"), parse_duration("2d")
    (5400.0, 45.0, 172800.0)
    """
    parts = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or not parts:
        raise ValueError(f"'{text}' is no duration (e.g. 90s, 30m, 2h, 1h30m, 1d)")
    d, h, m, s = (int(p or 0) for p in parts.groups())
    return float(((d * 24 + h) * 60 + m) * 60 + s)


def _s(value: object) -> str:
    return "" if value is None else str(value)


def audit_event(value: bytes | str, tz: tzinfo) -> Event:
    """One ``crowd.audit`` record as an event (lenient: fields added later are ignored)."""
    try:
        a = json.loads(value)
        if not isinstance(a, dict) or a.get("v") != 1:
            raise Unreadable(f"version {a.get('v') if isinstance(a, dict) else '?'}, not 1")
        return Event(
            incident_id=_s(a.get("incident_id")),
            zone_id=_s(a.get("zone_id")),
            ts=int(a["ts"]),
            time=local_time(int(a["ts"]), tz),
            actor=_s(a.get("actor")),
            action=_s(a["action"]),
            detail=_s(a.get("detail")),
            reason=_s(a.get("reason")),
            route=_s(a.get("route")),
            silence_id=_s(a.get("silence_id")),
            source="audit",
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Unreadable(str(exc)) from None


def alert_event(value: bytes | str, tz: tzinfo) -> Event:
    """One ``crowd.alerts`` transition as an event: who made it, what it did, why."""
    rec = decode(value)
    actor = "crowdsafe"
    reason = rec.held and f"held: {rec.held}" or ""
    if rec.transition == "acknowledged":
        actor, reason = rec.acknowledged_by or actor, rec.note or ""
    elif rec.transition == "resolved":
        actor, reason = rec.resolved_by or actor, rec.note or ""
    detail = f"{rec.transition}: {rec.state}, {rec.severity}, tier {rec.tier}"
    return Event(
        incident_id=rec.incident_id,
        zone_id=rec.zone_id,
        ts=rec.ts,
        time=local_time(rec.ts, tz),
        actor=actor,
        action="transition",
        detail=detail,
        reason=reason,
        route=",".join(rec.routes),
        silence_id=rec.silenced_by or "",
        source="alerts",
    )


def timeline(
    audit: Iterable[Event],
    alerts: Iterable[Event] = (),
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> dict[str, list[Event]]:
    """Events by incident id ("" for none), each list in time order, incidents by their first
    event; only events with ``start_ms <= ts < end_ms``; duplicates dropped. An incident whose
    transitions the audit holds is told by the audit alone (its ``ts`` are the worker's clock,
    the alerts' the readings' event time: they do not pair up); ``alerts`` tell the others."""
    events = list(dict.fromkeys(audit))
    covered = {e.incident_id for e in events if e.action == "transition"}
    events += [e for e in dict.fromkeys(alerts) if e.incident_id not in covered]
    events = [
        e
        for e in events
        if (start_ms is None or e.ts >= start_ms) and (end_ms is None or e.ts < end_ms)
    ]
    events.sort(key=lambda e: (e.ts, e.source != "alerts"))  # a transition before its effects
    out: dict[str, list[Event]] = {}
    for e in events:
        out.setdefault(e.incident_id, []).append(e)
    return out


def to_csv(incidents: dict[str, list[Event]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for events in incidents.values():
        w.writerows(asdict(e) for e in events)
    return buf.getvalue()


def to_json(incidents: dict[str, list[Event]], meta: dict) -> str:
    doc = {
        **meta,
        "incidents": [
            {
                "incident_id": iid,
                "zone_id": events[0].zone_id,
                "first": events[0].time,
                "last": events[-1].time,
                "events": [asdict(e) for e in events],
            }
            for iid, events in incidents.items()
            if iid
        ],
        "other": [asdict(e) for e in incidents.get("", [])],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
