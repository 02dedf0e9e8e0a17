"""Anomaly alert: the zone's occupancy is unusual for this hour (detectors/anomaly.py score),
held above the warning score for ``min_duration_s`` before it is raised."""

from __future__ import annotations

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, head, make_alarm


class Anomaly(AlertKind):
    name = "anomaly"

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        a = zone.anomaly or site.defaults.anomaly
        critical = max(a.critical, a.warning)
        return make_alarm(site, zone, a.warning, critical, min_duration_s=a.min_duration_s)

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        return snap.anomaly_score  # None when blind or warming up: skipped

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        if t.state == "cleared":
            return f"{head(zone, t)}, occupancy back to its usual pattern for this hour"
        return (
            f"{head(zone, t)}, occupancy unusual for this hour (score {t.value:.2f}, "
            f"~{snap.occupancy:.0f} people)"
        )
