"""What this worker last saw, for its own web views: zone states and recent alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECENT_ALERTS = 200


@dataclass
class LiveView:
    """The newest zone state per zone and the last :data:`RECENT_ALERTS` alerts (in memory)."""

    zone_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def add_zone_state(self, zone_state: dict[str, Any]) -> None:
        self.zone_states[zone_state["zone_id"]] = zone_state

    def add_alert(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)
        del self.alerts[:-RECENT_ALERTS]
