"""Incidents: alerts grouped, acknowledged, escalated, routed, silenced and audited."""
