"""What this worker last saw, for its own web views: zone states and recent alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.schema.incident import IncidentAlert
from streams.schema.payloads import Alert, ZoneState

RECENT_ALERTS = 200


@dataclass
class LiveView:
    """The newest zone state per zone and the last :data:`RECENT_ALERTS` alerts (in memory), as
    published: kept as Structs, turned into JSON only when a view asks."""

    zone_states: dict[str, ZoneState] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    # The newest record of each incident not resolved (what a command centre shows as open).
    incidents: dict[str, IncidentAlert] = field(default_factory=dict)

    def add_zone_state(self, zone_state: ZoneState) -> None:
        self.zone_states[zone_state.zone_id] = zone_state

    def add_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        del self.alerts[:-RECENT_ALERTS]

    def add_incident(self, record: IncidentAlert) -> None:
        if record.state == "resolved":
            self.incidents.pop(record.incident_id, None)
        else:
            self.incidents[record.incident_id] = record
