"""Incidents as OASIS Common Alerting Protocol 1.2 messages (``crowd.alerts.cap``).

Pure: one :class:`~streams.schema.incident.IncidentAlert` record (one transition of an incident)
in, one CAP ``<alert>`` out, as UTF-8 XML bytes. The same record always gives the same bytes, so
a record published twice (at-least-once delivery) gives the same CAP message twice, which a CAP
consumer drops by its ``sender``, ``identifier`` and ``sent``.

How the record maps onto CAP (README "CAP 1.2" has the full table):

- ``identifier``: ``{incident_id}/{seq}``, percent-encoded outside ``[A-Za-z0-9._~/:-]``
  (CAP forbids spaces, commas, ``<`` and ``&``).
- ``sent``: the record's ``ts`` in the site's time zone, to the second (CAP allows no fraction;
  UTC is written ``-00:00`` as CAP requires).
- ``msgType``: ``Alert`` for the incident's first record (``seq`` 1, ``raised``), ``Cancel``
  once it is ``cleared`` or ``resolved``, ``Update`` otherwise; every later message
  ``references`` the first one as ``sender,identifier,sent``. The first CAP message is the
  incident's first record sent to a route (a record held back by a silence or a blind zone is
  published nowhere, CAP included): every record carries its ``announced_seq`` and
  ``announced_at``.
- ``scope``: ``Restricted`` to responders and operators (see :data:`RESTRICTION`).

>>> cap_time(1_764_063_000_000, "Asia/Shanghai")
'2025-11-25T17:30:00+08:00'
>>> cap_time(1_764_063_000_999, "UTC")
'2025-11-25T09:30:00-00:00'
>>> cap_identifier("main-square/crowd/1764063000000", 3)
'main-square/crowd/1764063000000/3'
>>> cap_polygon([(23.1485, 113.2555), (23.1485, 113.2586), (23.1494, 113.2586)])
'23.1485,113.2555 23.1485,113.2586 23.1494,113.2586 23.1485,113.2555'
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from streams.config.site import Site, Zone
    from streams.schema.incident import IncidentAlert, Member

# OASIS Common Alerting Protocol Version 1.2, OASIS Standard, 1 July 2010.
CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"

Status = Literal["Actual", "Exercise"]
MsgType = Literal["Alert", "Update", "Cancel"]

# Not Public: these messages tell responders and operators (police dispatch, station staff, the
# command centre) where a crowd is dangerously dense, with operational detail (tiers, who has
# acknowledged); telling a dense crowd that it is dense is a decision for those people, not for
# a sensor pipeline (a public broadcast can itself start a rush). A public-warning gateway that
# takes these messages re-issues them with scope Public under its own sender.
RESTRICTION: Final = (
    "For emergency responders and site operators (police dispatch, station staff, command "
    "centre) only; not for public broadcast"
)
EXERCISE_NOTE: Final = "Exercise: a crowdsafe drill or simulated data, not a real crowd"

_OVER: Final = frozenset({"cleared", "resolved"})
# What a member alert's kind says about the incident: CAP <event> and whether it is measured
# (certainty Observed) or predicted (Likely). In order of precedence within a category.
_EVENTS: Final = {
    "crowd": [
        ("density", "Crowd density", "Observed"),
        ("forecast", "Crowd density forecast", "Likely"),
        ("anomaly", "Crowd anomaly", "Likely"),
    ],
    "technical": [
        ("source-offline", "Crowd sensor outage", "Observed"),
        ("source-fault", "Crowd sensor fault", "Observed"),
    ],
}
_DEFAULT_EVENT: Final = {"crowd": "Crowd safety", "technical": "Crowd sensor problem"}
_HEADLINE_MAX: Final = 160  # CAP: "SHOULD be made as direct as possible ... 160 characters"
# Characters XML 1.0 cannot carry at all (control characters other than tab, CR, LF, ...).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_CAP_ID: Final = re.compile(r"[\s,<&]")


def cap_time(ms: int, tz: tzinfo | str) -> str:
    """``ms`` (epoch milliseconds) as a CAP date-time in ``tz``: to the second (truncated), with
    the offset as ``±hh:mm``, and UTC as ``-00:00`` (CAP 1.2, 3.3.2)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    seconds = ms // 1000
    instant = datetime.fromtimestamp(seconds, UTC)
    offset = instant.astimezone(zone).utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)  # CAP has no seconds in an offset
    local = instant + timedelta(minutes=minutes)
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{mins:02d}"


def cap_identifier(incident_id: str, seq: int) -> str:
    """The CAP ``identifier`` of an incident's record ``seq``: ``{incident_id}/{seq}``,
    percent-encoded outside ``[A-Za-z0-9._~/:-]`` (so no space, comma, ``<`` or ``&``)."""
    return quote(f"{incident_id}/{seq}", safe="/:")


def cap_polygon(points: Sequence[tuple[float, float]]) -> str:
    """A CAP ``polygon``: ``lat,lon`` pairs (WGS84) separated by spaces, closed (the first pair
    repeated last, unless it already is)."""
    pairs = [f"{_degrees(lat)},{_degrees(lon)}" for lat, lon in points]
    if pairs and pairs[0] != pairs[-1]:
        pairs.append(pairs[0])
    return " ".join(pairs)


def cap_msg_type(incident: IncidentAlert) -> MsgType:
    """``Alert`` for an incident's first CAP message (its first record sent to a route),
    ``Cancel`` once it is over (cleared or resolved), else ``Update``."""
    if incident.seq == _first_seq(incident):
        return "Alert"
    return "Cancel" if incident.state in _OVER else "Update"


def _first_seq(incident: IncidentAlert) -> int:
    return incident.announced_seq or 1


def default_sender(site: Site) -> str:
    """The CAP ``sender`` of a site's messages: ``crowdsafe@{site id}``."""
    return f"crowdsafe@{site.site.id}"


def cap_message(
    incident: IncidentAlert,
    zone: Zone,
    *,
    sender: str,
    sender_name: str,
    tz: tzinfo | str,
    status: Status,
) -> bytes:
    """One incident record as a CAP 1.2 ``<alert>`` (UTF-8 XML with its declaration).

    ``zone`` is the incident's zone (its ``polygon``, if any, becomes the area's polygon);
    ``sender`` must be the same for every message of an incident (CAP: no spaces or commas);
    ``tz`` is the site's time zone. ``references`` cites the first record by its ``ts``,
    which every record carries as ``announced_at``.

    Raises ``ValueError`` for a ``sender`` CAP cannot carry or a zone that is not the
    incident's.
    """
    if not sender or _NOT_CAP_ID.search(sender):
        raise ValueError(f"CAP sender {sender!r}: no spaces, commas, '<' or '&'")
    if zone.id != incident.zone_id:
        raise ValueError(f"zone {zone.id!r} is not the incident's zone {incident.zone_id!r}")
    first_sent = incident.announced_at or incident.opened_at

    over = incident.state in _OVER
    msg_type = cap_msg_type(incident)
    event, certainty = _event(incident)

    alert = _el(None, "alert")
    _el(alert, "identifier", cap_identifier(incident.incident_id, incident.seq))
    _el(alert, "sender", sender)
    _el(alert, "sent", cap_time(incident.ts, tz))
    _el(alert, "status", status)
    _el(alert, "msgType", msg_type)
    _el(alert, "scope", "Restricted")
    _el(alert, "restriction", RESTRICTION)
    if status == "Exercise":
        _el(alert, "note", EXERCISE_NOTE)
    if incident.seq != _first_seq(incident):
        first_id = cap_identifier(incident.incident_id, _first_seq(incident))
        _el(alert, "references", f"{sender},{first_id},{cap_time(first_sent, tz)}")
    _el(alert, "incidents", quote(incident.incident_id, safe="/:"))

    info = _el(alert, "info")
    _el(info, "language", "en")
    _el(info, "category", "Safety")
    _el(info, "event", event)
    if over:
        _el(info, "responseType", "AllClear")
    _el(info, "urgency", "Past" if over else _pick(incident, "Immediate", "Expected"))
    _el(info, "severity", "Minor" if over else _pick(incident, "Severe", "Moderate"))
    _el(info, "certainty", certainty)
    _el(info, "onset", cap_time(incident.started_at, tz))
    _el(info, "senderName", sender_name)
    _el(info, "headline", _headline(incident, event))
    _el(info, "description", incident.message)
    for name, value in _parameters(incident):
        parameter = _el(info, "parameter")
        _el(parameter, "valueName", f"crowdsafe:{name}")
        _el(parameter, "value", value)
    area = _el(info, "area")
    _el(area, "areaDesc", incident.zone_name or zone.name)
    if zone.polygon:
        _el(area, "polygon", cap_polygon(zone.polygon))
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def cap_message_for_site(incident: IncidentAlert, site: Site, *, exercise: bool) -> bytes:
    """:func:`cap_message` with what the site file says: the incident's zone, the sender
    (:func:`default_sender`), the site's name and time zone; ``exercise`` (the setting, or
    simulated data) makes the status ``Exercise``."""
    return cap_message(
        incident,
        site.zone(incident.zone_id),
        sender=default_sender(site),
        sender_name=f"crowdsafe, {site.site.name}",
        tz=site.site.timezone,
        status="Exercise" if exercise else "Actual",
    )


def _el(parent: ET.Element | None, tag: str, text: str | None = None) -> ET.Element:
    name = f"{{{CAP_NS}}}{tag}"
    el = ET.Element(name) if parent is None else ET.SubElement(parent, name)
    if text is not None:
        el.text = _NOT_XML.sub("\ufffd", text)
    return el


def _degrees(x: float) -> str:
    # Fixed point (never 1e-05), ~0.1 m, no trailing zeros; +0.0 turns -0.0 into 0.
    return f"{x + 0.0:.6f}".rstrip("0").rstrip(".")


def _pick(incident: IncidentAlert, critical: str, warning: str) -> str:
    return critical if incident.severity == "critical" else warning


def _active(incident: IncidentAlert) -> list[Member]:
    """The members that still stand (all of them once every one has cleared)."""
    return [m for m in incident.members if m.state != "cleared"] or list(incident.members)


def _event(incident: IncidentAlert) -> tuple[str, str]:
    """CAP ``event`` and ``certainty``: from the members' kinds, the first by precedence."""
    kinds = {m.kind for m in _active(incident)}
    for kind, event, certainty in _EVENTS[incident.category]:
        if kind in kinds:
            return event, certainty
    return _DEFAULT_EVENT[incident.category], "Unknown"


def _headline(incident: IncidentAlert, event: str) -> str:
    if incident.state in _OVER:
        level = incident.state.capitalize()
    else:
        level = incident.severity.upper()
    blind = " (zone blind)" if incident.blind and incident.category == "crowd" else ""
    text = f"{level}: {event.lower()}{blind}, {incident.zone_name}"
    return text if len(text) <= _HEADLINE_MAX else text[: _HEADLINE_MAX - 1] + "…"


def _parameters(incident: IncidentAlert) -> list[tuple[str, str]]:
    out = [
        ("incident_id", incident.incident_id),
        ("seq", str(incident.seq)),
        ("transition", incident.transition),
        ("state", incident.state),
        ("tier", incident.tier),
    ]
    if incident.density is not None:
        out.append(("density", f"{incident.density:.2f}"))
    if incident.minutes_to_critical is not None:
        out.append(("minutes_to_critical", f"{incident.minutes_to_critical:.1f}"))
    if incident.acknowledged_by is not None:
        out.append(("acknowledged_by", incident.acknowledged_by))
    return out
