"""What the command centre knows, built record by record from the topics (pure: no Kafka, no
clock of its own, no I/O). :class:`CentreView` is fed by :mod:`streams.centre.reader` and read by
:mod:`streams.centre.server`; every method takes the wall-clock time it should judge at.

* **Zones**: the newest ``crowd.zone-state`` record of every zone, as published (unknown fields
  kept), with ``updated_ms`` (when the centre last saw it change, on the wall clock), ``stale``
  (not updated for longer than the site's ``stale_after_s``: the gap while a zone's worker is
  gone) and a last-hour ``history`` of density (120 buckets of 30 s, each the peak of its
  records; ``null`` where nothing was published, so a gap stays visible).
* **Incidents**: the newest record of each ``crowd.alerts`` incident (by ``seq``), resolved ones
  dropped; a redelivered or older record never resurrects or rolls one back.
* **Silences**: ``crowd.silences`` records not yet ended nor expired.
* **Open data**: hourly mean and peak density per zone (local hours of the site).
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from streams.config.site import Site
from streams.schema.incident import Ack, Silence

HISTORY_S = 3600
HISTORY_POINTS = 120
BUCKET_MS = HISTORY_S * 1000 // HISTORY_POINTS  # 30 s
HOUR_MS = 3_600_000
SEVERITY_RANK = {"critical": 0, "warning": 1}
RECENT_ACTIONS = 200


class Unusable(ValueError):
    """A record the centre cannot show (not JSON, another version, an unknown zone...)."""


def _decode(raw: bytes | str | dict) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        data = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise Unusable(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Unusable("not a JSON object")
    return data


def _convert(raw: bytes | str | dict, kind: type, what: str) -> Any:
    try:
        return msgspec.convert(_decode(raw), kind)
    except msgspec.ValidationError as exc:
        raise Unusable(f"not {what}: {exc}") from None


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


@dataclass
class _Zone:
    record: dict | None = None
    updated_ms: int | None = None
    # bucket index (ts // BUCKET_MS) -> peak density in it (None: records, but all blind)
    buckets: dict[int, float | None] = field(default_factory=dict)
    last_hourly_ts: int = -1


@dataclass
class _Hour:
    total: float = 0.0
    n: int = 0
    peak: float = 0.0


class CentreView:
    """The site's zones, open incidents and active silences, as the topics tell them."""

    def __init__(
        self, site: Site, stale_after_s: float | None = None, open_data_hours: int = 24
    ) -> None:
        self.site = site
        self.stale_after_s = stale_after_s or site.defaults.stale_after_s
        self.open_data_hours = open_data_hours
        self.tz = ZoneInfo(site.site.timezone)
        self._zones: dict[str, _Zone] = {z.id: _Zone() for z in site.zones}
        self._incidents: dict[str, dict] = {}  # open: newest record (as published)
        self._seq: dict[str, int] = {}  # newest seq seen per incident, resolved ones too
        self._silences: dict[str, dict] = {}
        self._hours: dict[tuple[str, int], _Hour] = {}
        self.actions: deque[dict] = deque(maxlen=RECENT_ACTIONS)  # recent acks, resolves, raises

    # --- records in ------------------------------------------------------------------------

    def apply_zone_state(self, raw: bytes | str | dict, now_ms: int) -> dict | None:
        """Take one ``crowd.zone-state`` record seen at ``now_ms`` (wall clock); the zone event
        to push (the zone without history, plus ``point``: its history bucket ``[ts, peak]``),
        or None when it changes nothing (an older or repeated record)."""
        rec = _decode(raw)
        zone_id, ts = rec.get("zone_id"), rec.get("ts")
        if rec.get("v") != 1 or zone_id not in self._zones or not isinstance(ts, int):
            raise Unusable(f"not a zone state of this site: {str(rec)[:200]}")
        z = self._zones[zone_id]
        density = _number(rec.get("density"))
        self._add_hourly(zone_id, z, ts, density)
        if z.record is not None and ts < z.record["ts"]:
            return None  # an older record (a redelivery after a failover): keep the newest
        if z.record is not None and ts == z.record["ts"] and rec == z.record:
            return None
        z.record, z.updated_ms = rec, now_ms
        bucket = min(ts, now_ms) // BUCKET_MS
        if bucket in z.buckets:
            old = z.buckets[bucket]
            z.buckets[bucket] = density if old is None else max(old, density or old)
        else:
            z.buckets[bucket] = density
        for b in [b for b in z.buckets if b <= bucket - HISTORY_POINTS]:
            del z.buckets[b]
        out = self._zone(zone_id, z, now_ms, history=False)
        out["point"] = [bucket * BUCKET_MS, z.buckets[bucket]]
        return out

    def apply_incident(self, raw: bytes | str | dict) -> dict | None:
        """Take one ``crowd.alerts`` record (version 2); the record if it is the incident's
        newest (resolved included, so a page can drop it), None if older or repeated."""
        rec = _decode(raw)
        incident_id, seq = rec.get("incident_id"), rec.get("seq")
        if rec.get("v") != 2 or not isinstance(incident_id, str) or not isinstance(seq, int):
            raise Unusable("not an incident record (crowd.alerts version 2)")
        if rec.get("state") not in ("open", "acknowledged", "cleared", "resolved"):
            raise Unusable(f"unknown incident state {rec.get('state')!r}")
        if seq <= self._seq.get(incident_id, 0):
            return None
        self._seq[incident_id] = seq
        if rec["state"] == "resolved":
            self._incidents.pop(incident_id, None)
        else:
            self._incidents[incident_id] = rec
        return rec

    def apply_ack(self, raw: bytes | str | dict) -> dict:
        """Take one ``crowd.alerts.ack`` record (kept among the recent actions)."""
        out = msgspec.to_builtins(_convert(raw, Ack, "an acknowledgement"))
        self.actions.append(out)
        return out

    def apply_silence(self, raw: bytes | str | dict) -> dict:
        """Take one ``crowd.silences`` record: a new silence, or one expired early."""
        silence = _convert(raw, Silence, "a silence")
        out = msgspec.to_builtins(silence)
        if silence.action == "expire":
            self._silences.pop(silence.silence_id, None)
        else:
            self._silences[silence.silence_id] = out
        return out

    # --- what the centre shows ---------------------------------------------------------------

    def zones(self, now_ms: int) -> list[dict]:
        """Every zone of the site, in site order: the newest record (or a placeholder with
        ``density`` null), ``updated_ms``, ``stale`` and ``history``."""
        return [self._zone(zone_id, z, now_ms, history=True) for zone_id, z in self._zones.items()]

    def zone(self, zone_id: str, now_ms: int) -> dict:
        return self._zone(zone_id, self._zones[zone_id], now_ms, history=True)

    def stale(self, zone_id: str, now_ms: int) -> bool:
        updated = self._zones[zone_id].updated_ms
        return updated is None or now_ms - updated > self.stale_after_s * 1000

    def incidents(self) -> list[dict]:
        """Open incidents (newest record each), worst severity first, then newest first."""
        return sorted(
            self._incidents.values(),
            key=lambda r: (SEVERITY_RANK.get(r.get("severity"), 2), -int(r.get("ts") or 0)),
        )

    def silences(self, now_ms: int) -> list[dict]:
        """Silences not yet over (including ones that start later), ending soonest first."""
        for sid in [s for s, r in self._silences.items() if r["ends_at"] <= now_ms]:
            del self._silences[sid]
        return sorted(self._silences.values(), key=lambda r: (r["ends_at"], r["silence_id"]))

    def occupancy_rows(self, now_ms: int) -> list[dict]:
        """Hourly mean and peak density per zone (densities rounded to 2 decimals), for local
        hours that ended at least an hour before ``now_ms``, oldest first, zones in site
        order; an hour with no density known is left out."""
        order = {zone_id: i for i, zone_id in enumerate(self._zones)}
        rows = []
        for (zone_id, start), h in sorted(self._hours.items(), key=lambda kv: (kv[0][1], order[kv[0][0]])):  # fmt: skip
            if start + HOUR_MS > now_ms - HOUR_MS or h.n == 0:
                continue
            rows.append({
                "hour_start": datetime.fromtimestamp(start / 1000, self.tz).isoformat(),
                "zone_id": zone_id,
                "zone_name": self.site.zone(zone_id).name,
                "mean_density": round(h.total / h.n, 2),
                "peak_density": round(h.peak, 2),
                "samples": h.n,
            })  # fmt: skip
        return rows

    # --- internals ---------------------------------------------------------------------------

    def _zone(self, zone_id: str, z: _Zone, now_ms: int, history: bool) -> dict:
        if z.record is not None:
            out = dict(z.record)
        else:
            zone = self.site.zone(zone_id)
            t = self.site.thresholds(zone)
            out = {
                "zone_id": zone_id,
                "name": zone.name,
                "kind": zone.kind,
                "area_m2": zone.area_m2,
                "warning": t.warning,
                "critical": t.critical,
                "ts": None,
                "density": None,
            }
        out["updated_ms"] = z.updated_ms
        out["stale"] = self.stale(zone_id, now_ms)
        if history:
            out["history"] = self._history(z, now_ms)
        return out

    def _history(self, z: _Zone, now_ms: int) -> list[list]:
        if not z.buckets:
            return []
        last = int(now_ms) // BUCKET_MS
        first = max(min(z.buckets), last - HISTORY_POINTS + 1)
        return [[b * BUCKET_MS, z.buckets.get(b)] for b in range(first, last + 1)]

    def _add_hourly(self, zone_id: str, z: _Zone, ts: int, density: float | None) -> None:
        if ts <= z.last_hourly_ts:
            return  # a repeat (records of a zone come in event-time order)
        z.last_hourly_ts = ts
        if density is None:
            return
        local = datetime.fromtimestamp(ts / 1000, self.tz)
        start = int(local.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)
        h = self._hours.get((zone_id, start))
        if h is None:
            h = self._hours[(zone_id, start)] = _Hour()
            oldest = start - (self.open_data_hours + 2) * HOUR_MS
            for key in [k for k in self._hours if k[1] < oldest]:
                del self._hours[key]
        h.total += density
        h.n += 1
        h.peak = max(h.peak, density)
