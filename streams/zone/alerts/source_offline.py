"""Source-offline alert: warning (value 1) when some of the zone's configured sources are stale
or offline, critical (2) when the zone is blind: no fresh source at all."""

from __future__ import annotations

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, head, make_alarm

SOME_DOWN, BLIND = 1.0, 2.0


class SourceOffline(AlertKind):
    name = "source-offline"
    category = "technical"

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        return make_alarm(site, zone, SOME_DOWN, BLIND)

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        """Sources not in the site file never count as down."""
        if snap.occupancy is None:
            return BLIND
        down = snap.sources.stale + snap.sources.offline
        return SOME_DOWN if any(sid in ctx.configured_sources for sid in down) else 0.0

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        if t.state == "cleared":
            return f"{head(zone, t)}, its sources are reporting again"
        down = snap.sources.stale + snap.sources.offline
        blind = " — zone is blind" if snap.occupancy is None else ""
        return f"{head(zone, t)}, {len(down)} source(s) not reporting: {', '.join(down)}{blind}"
