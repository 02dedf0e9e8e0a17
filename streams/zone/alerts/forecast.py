"""Forecast alert: critical density predicted within ``warning_min`` (warning) or
``critical_min`` (critical) minutes (detectors/forecast.py).

It speaks only of the future. While the zone is at or over critical density (the forecast's 0.0,
"already there") the density alert speaks for it, and this alert is held: it neither raises (no
"critical in N min" for a zone that is critical now) nor clears (an alert raised before the
crossing stays open, so the incident does not flap through the crisis). It clears once the zone
is no longer heading to critical (``None``: flat, falling or too far) for the hold time.
"""

from __future__ import annotations

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.zone.alerts.base import AlertKind, Snapshot, ZoneContext, head, make_alarm


class Forecast(AlertKind):
    name = "forecast"

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        f = zone.forecast or site.defaults.forecast
        critical = min(f.critical_min, f.warning_min)
        return make_alarm(
            site, zone, f.warning_min, critical, higher_is_worse=False,
            min_duration_s=f.min_duration_s,
        )  # fmt: skip

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        # None means "not heading there", which clears an open forecast alert.
        return snap.minutes_to_critical

    def skipped(self, snap: Snapshot, ctx: ZoneContext) -> bool:
        # No forecast while blind; none either while the zone is already critical (see above).
        return snap.occupancy is None or snap.minutes_to_critical == 0.0

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        if t.state == "cleared":
            return (
                f"{head(zone, t)}, no longer heading to critical density within "
                f"{t.threshold:.0f} min"
            )
        return (
            f"{head(zone, t)}, critical density ({snap.critical:.2f} p/m²) forecast in "
            f"{t.value:.{0 if t.value >= 10 else 1}f} min (band {snap.minutes_to_critical_low}-"
            f"{snap.minutes_to_critical_high} min), now {snap.density:.2f} p/m²"
        )
