"""What this worker last saw, for its own web views: zone states and recent alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.schema.payloads import Alert, ZoneState

RECENT_ALERTS = 200


@dataclass
class LiveView:
    """The newest zone state per zone and the last :data:`RECENT_ALERTS` alerts (in memory), as
    published: kept as Structs, turned into JSON only when a view asks."""

    zone_states: dict[str, ZoneState] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)

    def add_zone_state(self, zone_state: ZoneState) -> None:
        self.zone_states[zone_state.zone_id] = zone_state

    def add_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        del self.alerts[:-RECENT_ALERTS]
