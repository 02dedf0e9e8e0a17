"""Forecast alert: critical density predicted within ``warning_min`` (warning) or
``critical_min`` (critical) minutes (detectors/forecast.py)."""

from __future__ import annotations

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, head, make_alarm


class Forecast(AlertKind):
    name = "forecast"

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        f = zone.forecast or site.defaults.forecast
        critical = min(f.critical_min, f.warning_min)
        return make_alarm(site, zone, f.warning_min, critical, higher_is_worse=False)

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        # None means "not heading there", which clears an open forecast alert.
        return snap.minutes_to_critical

    def skipped(self, snap: Snapshot, ctx: ZoneContext) -> bool:
        return snap.occupancy is None  # no forecast while blind

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        if t.state == "cleared":
            return (
                f"{head(zone, t)}, no longer heading to critical density within "
                f"{t.threshold:.0f} min"
            )
        return (
            f"{head(zone, t)}, critical density ({snap.critical:.2f} p/m²) forecast in "
            f"{t.value:.0f} min (band {snap.minutes_to_critical_low}-"
            f"{snap.minutes_to_critical_high} min), now {snap.density:.2f} p/m²"
        )
