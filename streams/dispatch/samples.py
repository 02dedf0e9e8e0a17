"""Example incident records, as the worker writes them: for tests of the dispatch clients
and for trying a console before any worker runs (README "An example session of the dispatch
client")."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.schema.incident import Dispatch, IncidentAlert, Member

MINUTE_MS = 60_000


def member(kind: str = "density", severity: str = "critical", **kw: Any) -> Member:
    fields: dict[str, Any] = {
        "alert_id": f"{kind}/{kw.get('started_at', 0)}",
        "kind": kind,
        "severity": severity,
        "state": "raised",
        "value": 4.9,
        "threshold": 4.7,
        "started_at": 0,
        "ts": 0,
        "message": f"{kind} {severity}",
    }
    fields.update(kw)
    return Member(**fields)


def incident(
    zone_id: str = "main-square",
    started_at: int = 1_746_093_600_000,  # 2025-05-01 18:00 in Guangzhou
    seq: int = 1,
    transition: str = "raised",
    *,
    category: str = "crowd",
    route: str | None = None,
    kinds: tuple[str, ...] = ("density",),
    **kw: Any,
) -> IncidentAlert:
    """One transition of an incident of ``zone_id`` (``ts``: ``seq`` minutes after it started,
    unless given); a :class:`Dispatch` record with ``route``. Other fields as keywords."""
    severity = kw.get("severity", "critical")
    fields: dict[str, Any] = {
        "v": 2,
        "incident_id": f"{zone_id}/{category}/{started_at}",
        "seq": seq,
        "zone_id": zone_id,
        "zone_name": zone_id.replace("-", " ").capitalize(),
        "category": category,
        "transition": transition,
        "state": "open",
        "severity": severity,
        "tier": "grid",
        "ts": started_at + (seq - 1) * MINUTE_MS,
        "started_at": started_at,
        "opened_at": started_at,
        "announced_seq": 1,
        "announced_at": started_at,
        "alert_id": None,
        "members": [
            member(
                k,
                severity,
                started_at=started_at,
                ts=started_at,
                alert_id=f"{zone_id}/{k}/{started_at}",
            )
            for k in kinds
        ],
        "acknowledged_by": None,
        "acknowledged_at": None,
        "resolved_by": None,
        "note": None,
        "blind": False,
        "silenced_by": None,
        "routes": [route] if route else [],
        "held": None,
        "density": 4.91,
        "minutes_to_critical": None,
        "message": f"{zone_id}: {transition}",
    }
    fields.update(kw)
    if route:
        return Dispatch(**fields, route=route)
    return IncidentAlert(**fields)


def encode(rec: IncidentAlert) -> bytes:
    return msgspec.json.encode(rec)
