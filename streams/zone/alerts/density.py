"""Density alert: the zone's density reaches its warning / critical threshold (p/m²).

Thresholds per zone kind from the site file (Still 2014, the UK Green Guide, Fruin 1987).
"""

from __future__ import annotations

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, make_alarm


class Density(AlertKind):
    name = "density"

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        t = site.thresholds(zone)
        return make_alarm(site, zone, t.warning, t.critical)

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        return snap.density  # None when blind: skipped

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        what = f"density {t.value:.2f} p/m² (LOS {snap.los}, ~{snap.occupancy:.0f} people)"
        if t.state == "cleared":
            return f"{zone.name}: cleared, {what} below {t.threshold:.2f} for the hold time"
        return f"{zone.name}: {t.severity.upper()} {t.state}, {what} >= {t.threshold:.2f}"
