"""Per-zone processing: readings in, zone state and alert transitions out.

Plain Python over the site model and a JSON-able state dict per zone, so it runs inside the Faust
agent (one table write per zone per batch), in tests and in benchmarks alike. Readings are applied
one at a time in order, so results do not depend on how the stream was batched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from detectors.alerting import Alarm, Episode, Transition
from detectors.density import LevelEstimate, density, fuse_levels, integrate_gates
from detectors.los import level_of_service
from streams.records import SCHEMA_VERSION, Reading, ReadingBatch
from streams.site import Site, Zone


class Rejected(ValueError):
    """An input message that cannot be used; ``str()`` is the dead-letter reason."""


def parse_message(
    key: bytes | None, value: bytes | None, site: Site, latest_ok_ms: int | None = None
) -> list[Reading]:
    """Decode one ``crowd.readings`` message (a reading or a batch) or raise :class:`Rejected`.

    ``latest_ok_ms`` rejects event times further in the future than a clock skew can explain
    (history is fine: replays publish it on purpose).
    """
    if not value:
        raise Rejected("empty message")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type(data).__name__}")
    try:
        readings = (
            ReadingBatch.model_validate(data).readings
            if "readings" in data
            else [Reading.model_validate(data)]
        )
    except ValidationError as exc:
        raise Rejected(_validation_reason(exc)) from exc
    zone_key = key.decode(errors="replace") if key else None
    for r in readings:
        if r.zone_id not in site.zone_by_id:
            raise Rejected(f"unknown zone '{r.zone_id}'")
        if latest_ok_ms is not None and r.ts > latest_ok_ms:
            raise Rejected(f"ts {r.ts} is in the future (after {latest_ok_ms})")
        if zone_key is not None and zone_key != r.zone_id:
            raise Rejected(f"message key '{zone_key}' is not the reading's zone_id '{r.zone_id}'")
    return readings


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "invalid reading: " + "; ".join(parts)


@dataclass(slots=True)
class Outcome:
    """What one batch of readings did to one zone."""

    state: dict[str, Any]
    zone_state: dict[str, Any] | None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0


class ZoneProcessor:
    """Applies readings to zone state using the site's zones, sources and thresholds."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._alarms: dict[str, dict[str, Alarm]] = {
            z.id: {"density": site.density_alarm(z)} for z in site.zones
        }

    def apply(self, zone_id: str, state: dict[str, Any], readings: list[Reading]) -> Outcome:
        zone = self.site.zone(zone_id)
        state = state or {"sources": {}, "gate_occupancy": 0.0, "episodes": {}}
        out = Outcome(state=state, zone_state=None)
        for r in sorted(readings, key=lambda r: (r.ts, r.source_id, r.seq)):
            if not self._record(state, r):
                out.duplicates += 1
                continue
            snapshot = self._snapshot(zone, state, r.ts)
            out.alerts.extend(self._alerts(zone, state, snapshot))
            out.zone_state = snapshot
        return out

    def _record(self, state: dict[str, Any], r: Reading) -> bool:
        """Update the source's state; False for a duplicate (replayed or re-delivered) reading."""
        src = state["sources"].get(r.source_id)
        if src is not None and r.seq <= src["seq"]:
            return False
        src = src or {"kind": r.kind}
        src.update(seq=r.seq, ts=max(r.ts, src.get("ts", 0)), status=r.status, reason=r.reason)
        state["sources"][r.source_id] = src
        state["ts"] = max(r.ts, state.get("ts", 0))
        if r.status != "ok":
            return True
        if r.entered is not None or r.exited is not None:
            entered, exited = r.entered or 0, r.exited or 0
            state["gate_occupancy"] = integrate_gates(state["gate_occupancy"], entered, exited)
            src["net_flow"] = src.get("net_flow", 0) + entered - exited
        if r.count is not None:
            src["estimate"] = self._level_estimate(r)
        return True

    def _level_estimate(self, r: Reading) -> float:
        source = self.site.source_by_id.get(r.source_id)
        if source is None:  # not (yet) in the site file: taken at face value
            return float(r.count)
        if r.kind == "camera":
            return r.count / source.coverage_of(r.zone_id)
        return r.count * source.scale

    def _snapshot(self, zone: Zone, state: dict[str, Any], ts: int) -> dict[str, Any]:
        stale_ms = self.site.defaults.stale_after_s * 1000
        fresh, stale, offline, levels = [], [], [], []
        gate_fresh = False
        for sid, src in sorted(state["sources"].items()):
            if src["status"] != "ok":
                offline.append(sid)
            elif ts - src["ts"] > stale_ms:
                stale.append(sid)
            else:
                fresh.append(sid)
                if "estimate" in src:
                    weight = (
                        self.site.source_by_id[sid].weight if sid in self.site.source_by_id else 1
                    )
                    levels.append(LevelEstimate(sid, src["estimate"], weight))
                else:
                    gate_fresh = True
        occupancy = fuse_levels(levels)
        if occupancy is not None:
            state["gate_occupancy"] = occupancy  # re-anchor gates to what the cameras see
        elif gate_fresh:
            occupancy = state["gate_occupancy"]
        t = self.site.thresholds(zone)
        rho = None if occupancy is None else density(occupancy, zone.area_m2)
        return {
            "v": SCHEMA_VERSION,
            "zone_id": zone.id,
            "name": zone.name,
            "kind": zone.kind,
            "ts": ts,
            "occupancy": None if occupancy is None else round(occupancy, 1),
            "area_m2": zone.area_m2,
            "density": None if rho is None else round(rho, 4),
            "los": None if rho is None else level_of_service(rho, zone.kind),
            "warning": t.warning,
            "critical": t.critical,
            "sources": {"fresh": fresh, "stale": stale, "offline": offline},
        }

    def _alerts(self, zone: Zone, state: dict[str, Any], snap: dict[str, Any]) -> list[dict]:
        alerts = []
        values = {"density": snap["density"]}
        for kind, alarm in self._alarms[zone.id].items():
            value = values[kind]
            if value is None:  # no fresh source: nothing is known, so nothing clears either
                continue
            ep = Episode.from_state(state["episodes"].get(kind))
            transition = alarm.update(ep, snap["ts"], value)
            state["episodes"][kind] = ep.to_state()
            if transition:
                alerts.append(alert_record(zone, kind, transition, snap))
        return alerts


def alert_record(zone: Zone, kind: str, t: Transition, snap: dict[str, Any]) -> dict[str, Any]:
    """The ``crowd.alerts`` payload for one transition."""
    return {
        "v": SCHEMA_VERSION,
        "alert_id": f"{zone.id}/{kind}/{t.started_at}",
        "zone_id": zone.id,
        "zone_name": zone.name,
        "kind": kind,
        "severity": t.severity,
        "state": t.state,
        "value": None if t.value != t.value else round(t.value, 4),  # NaN -> null
        "threshold": round(t.threshold, 4),
        "started_at": t.started_at,
        "ts": t.ts,
        "message": _message(zone, kind, t, snap),
    }


def _message(zone: Zone, kind: str, t: Transition, snap: dict[str, Any]) -> str:
    if kind == "density":
        what = f"density {t.value:.2f} p/m² (LOS {snap['los']}, ~{snap['occupancy']:.0f} people)"
        if t.state == "cleared":
            return f"{zone.name}: cleared, {what} below {t.threshold:.2f} for the hold time"
        return f"{zone.name}: {t.severity.upper()} {t.state}, {what} >= {t.threshold:.2f}"
    return f"{zone.name}: {kind} {t.severity} {t.state} (value {t.value:.3g}, threshold {t.threshold:.3g})"
