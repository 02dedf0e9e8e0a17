"""Source-fault alert: sources that report but cannot be trusted (detectors/source_health.py):
a level source *stuck* at one value, or *disagreeing* persistently with the zone's other level
sources. Value: how many of the zone's configured sources are faulty; warning from one, critical
when every configured level source of the zone is (its occupancy then rests on faulty sources).

The processor judges the sources (it holds their state) with this kind's settings and publishes
them in the zone state's ``sources.faulty``; faulty sources stay in the fusion (leaving them out
is a policy decision for later).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from detectors.alerting import Alarm, Transition
from detectors.source_health import HealthSettings
from streams.config.site import Site, Zone
from streams.schema.payloads import FaultySource
from streams.sources import KINDS as SOURCE_KINDS
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, head, make_alarm


class SourceFaultSettings(BaseModel):
    """``[defaults.alerts.source-fault]``, per zone ``alerts.source-fault``."""

    stuck_after_s: float = Field(600.0, gt=0)  # a level unchanged this long (event time)...
    stuck_min_people: float = Field(5.0, ge=0)  # ... at this many or more: stuck on its own
    move_people: float = Field(10.0, gt=0)  # ... below: stuck if the others moved this much
    disagree_factor: float = Field(2.0, gt=1)  # reads this many times more (or less) than ...
    half_life_s: float = Field(120.0, gt=0)  # ... the others, smoothed over this half-life ...
    min_duration_s: float = Field(300.0, ge=0)  # ... for this long
    floor_people: float = Field(10.0, gt=0)  # people added to both sides of a ratio


class SourceFault(AlertKind):
    name = "source-fault"
    category = "technical"
    settings_model = SourceFaultSettings

    def health(self, site: Site, zone: Zone) -> HealthSettings:
        """The detector's settings for ``zone`` (the processor judges sources with them)."""
        return HealthSettings(**self.settings(site, zone).model_dump())

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        levels = [s for s in site.sources_by_zone[zone.id] if SOURCE_KINDS[s.kind].reports_level]
        return make_alarm(site, zone, 1.0, float(max(len(levels), 1)))

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        """Sources not in the site file are never counted."""
        return float(sum(f.source_id in ctx.configured_sources for f in snap.sources.faulty))

    def skipped(self, snap: Snapshot, ctx: ZoneContext) -> bool:
        return snap.occupancy is None  # blind: source-offline says so, nothing to judge

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        if t.state == "cleared":
            return f"{head(zone, t)}, its sources move and agree again"
        faults = "; ".join(describe(f, snap.ts) for f in snap.sources.faulty)
        return f"{head(zone, t)}, {len(snap.sources.faulty)} source(s) faulty: {faults}"


def describe(f: FaultySource, ts: int) -> str:
    """``cam-x stuck at 240 people for 14 min`` (its zone estimate) / ``cam-y reads 3.1× the
    others for 6 min``."""
    minutes = max(ts - f.since, 0) / 60_000
    if f.fault == "stuck":
        return f"{f.source_id} stuck at {f.value:.0f} people for {minutes:.0f} min"
    return f"{f.source_id} reads {f.value:.1f}× the others for {minutes:.0f} min"
