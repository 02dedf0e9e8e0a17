"""Payloads of the alert machinery: incidents on ``crowd.alerts`` (version 2), acknowledgements,
silences, the audit trail and the dispatch routes.

An **incident** groups one zone's concurrent alerts of one category (``crowd``: density,
forecast, anomaly; ``technical``: source-offline, source-fault) under a stable ``incident_id``.
Every change of an incident is one :class:`IncidentAlert` on ``crowd.alerts``: what happened
(``transition``), where it stands (``state``, ``severity``, ``tier``) and its member alerts, so a
consumer rebuilds the open incidents from the topic alone (the newest record per incident; an
incident is over once ``resolved``). ``(incident_id, seq)`` identifies a record: a consumer that
sees it twice (at-least-once delivery) drops the second.

Inputs (:class:`Ack`, :class:`Silence`) are decoded strictly, as readings are: any client may
write them (the page, ``crowdsafe incidents``, ``kcat``), keyed by zone id.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from streams.schema.payloads import MAX_TS_MS, MIN_TS_MS, AlertKindName, _Out

INCIDENT_VERSION: Final = 2  # crowd.alerts: version 1 was one record per alert transition

Category = Literal["crowd", "technical"]
Severity = Literal["warning", "critical"]
IncidentStateName = Literal["open", "acknowledged", "cleared", "resolved"]
TransitionName = Literal[
    "raised",  # the incident opened (its first alert)
    "updated",  # a member alert joined, changed or cleared without changing the incident's level
    "severity-up",  # warning -> critical (an acknowledgement is kept; everyone is told again)
    "tier-up",  # not acknowledged in time: one step up the escalation ladder
    "acknowledged",
    "cleared",  # every member alert cleared; waits for a person to resolve it
    "resolved",  # closed by a person (or automatically, long after clearing)
    "silenced",  # a silence now holds this incident's transitions back
    "unsilenced",
    "blind",  # the zone lost all its sources while this incident is active
    "sighted",  # ... and sees again
]
Held = Literal["silenced", "inhibited", "blind"]
EpochMs = Annotated[int, Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
Person = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"\S")]
Note = Annotated[str, Meta(max_length=1000)]
IncidentId = Annotated[str, Meta(min_length=1, max_length=300)]
ZoneId = Annotated[str, Meta(min_length=1, max_length=128)]


class Member(_Out):
    """One alert of an incident: the alert's own episode (``alert_id`` per kind and episode, as
    in version 1) and its last transition."""

    alert_id: str
    kind: AlertKindName
    severity: Severity
    state: Literal["raised", "escalated", "cleared"]
    value: float | None
    threshold: float
    started_at: int
    ts: int
    message: str


class IncidentAlert(_Out):
    """One record of ``crowd.alerts`` (version 2, keyed by ``zone_id``): a transition of an
    incident."""

    v: Literal[2]
    incident_id: str  # {zone_id}/{category}/{started_at}
    seq: int  # this incident's transitions so far (1: raised); with incident_id, the record's id
    zone_id: str
    zone_name: str
    category: Category
    transition: TransitionName
    state: IncidentStateName
    severity: Severity
    tier: str  # the escalation tier it has reached (site file [[escalation.tiers]])
    ts: int  # when this transition happened (ms); never before the incident's previous one
    started_at: int  # event time of its first alert
    opened_at: int  # ts of its first record (transition raised)
    # seq and ts of its first record sent to a route (its CAP Alert, which later CAP messages
    # reference); null while every record so far was held
    announced_seq: int | None
    announced_at: int | None
    alert_id: str | None  # the member whose transition this is (None: ack, tier-up, ...)
    members: list[Member]
    acknowledged_by: str | None
    acknowledged_at: int | None
    resolved_by: str | None
    note: str | None  # the last acknowledgement's or resolution's note
    blind: bool  # the zone has no fresh source: its crowd alerts cannot be judged
    silenced_by: str | None  # the silence holding it back, if any
    routes: list[str]  # routes this transition was sent to
    held: Held | None  # why it was sent nowhere, if it was not
    density: float | None  # the zone's density (p/m²) and forecast when this happened
    minutes_to_critical: float | None
    message: str


class Dispatch(IncidentAlert):
    """One record of ``crowd.dispatch.<route>``: an incident transition sent to that route."""

    route: str


class Ack(msgspec.Struct, kw_only=True):
    """An acknowledgement or resolution on ``crowd.alerts.ack``, keyed by the incident's zone
    id. ``resolve`` is refused before the incident's sensor alerts have cleared.

    ``raise``: a person raises a **manual** alert on the key's zone (a problem the sensors do
    not see), with ``severity`` and a ``note`` saying what; ``incident_id`` is then the zone id.
    It joins the zone's open crowd incident, or opens one; it clears when the incident is
    resolved."""

    v: Literal[1] = 1
    incident_id: IncidentId
    by: Person
    ts: EpochMs
    action: Literal["ack", "resolve", "raise"]
    note: Note | None = None
    severity: Severity | None = None  # raise only


class Silence(msgspec.Struct, kw_only=True):
    """A silence on ``crowd.silences``, keyed by ``zone_id``: the zone's transitions (or, with
    ``source_id``, its technical ones about that source only) are recorded but not routed until
    ``ends_at``. A critical density alert is never silenced. ``action: expire`` ends it early."""

    v: Literal[1] = 1
    silence_id: Annotated[str, Meta(min_length=1, max_length=128)]
    zone_id: ZoneId
    source_id: ZoneId | None = None
    by: Person
    reason: Annotated[str, Meta(min_length=1, max_length=1000, pattern=r"\S")]
    ts: EpochMs
    starts_at: EpochMs | None = None  # default: ts
    ends_at: EpochMs
    action: Literal["create", "expire"] = "create"


AuditAction = Literal[
    "transition",  # an incident changed (the crowd.alerts record)
    "acknowledge",
    "resolve",
    "raise",  # a person raised a manual alert
    "escalate",
    "route",  # a transition was sent to a route's topic
    "deliver",  # a webhook accepted it
    "delivery-failed",  # a webhook refused it after every retry (also dead-lettered)
    "delivery-skipped",  # too old to be news (a route's max_age_s): not posted
    "silence",
    "unsilence",
    "refused",  # an acknowledgement or silence that could not be applied, and why
]


class AuditRecord(_Out):
    """One record of ``crowd.audit`` (keyed by zone id): who did what, when and why."""

    v: Literal[1]
    ts: int
    actor: str  # a person (an acknowledgement's ``by``) or "crowdsafe" (the worker)
    action: AuditAction
    zone_id: str | None
    incident_id: str | None
    silence_id: str | None
    route: str | None
    detail: str  # what happened, e.g. "severity-up: critical, tier grid"
    reason: str | None  # why: a note, a silence's reason, a delivery error

    @classmethod
    def of(
        cls,
        ts: int,
        actor: str,
        action: AuditAction,
        detail: str,
        *,
        zone_id: str | None = None,
        incident_id: str | None = None,
        silence_id: str | None = None,
        route: str | None = None,
        reason: str | None = None,
    ) -> AuditRecord:
        """One record, naming only what it is about (the other ids null)."""
        return cls(
            v=1, ts=ts, actor=actor, action=action, zone_id=zone_id, incident_id=incident_id,
            silence_id=silence_id, route=route, detail=detail, reason=reason,
        )  # fmt: skip
