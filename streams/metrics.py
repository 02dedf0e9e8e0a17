"""Prometheus metrics of the worker. Names carry units and ``_total``; labels stay low-cardinality
(zone ids are a few dozen per site, kinds and reasons a handful)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    """All worker metrics on one registry (passed explicitly so tests get a clean one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.readings = Counter(
            "crowdsafe_readings_total", "Readings accepted, by source kind", ["kind"], registry=r
        )
        self.rejected = Counter(
            "crowdsafe_readings_rejected_total",
            "Messages sent to the dead-letter topic, by reason class",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "crowdsafe_readings_duplicate_total", "Readings dropped as re-deliveries", registry=r
        )
        self.alerts = Counter(
            "crowdsafe_alerts_total",
            "Alert transitions published",
            ["kind", "severity", "state"],
            registry=r,
        )
        self.occupancy = Gauge(
            "crowdsafe_zone_occupancy_persons", "Fused zone occupancy", ["zone"], registry=r
        )
        self.density = Gauge(
            "crowdsafe_zone_density_persons_per_square_metre", "Zone density", ["zone"], registry=r
        )
        self.stale_sources = Gauge(
            "crowdsafe_zone_sources_unavailable", "Stale or offline sources", ["zone"], registry=r
        )
        self.lag = Histogram(
            "crowdsafe_event_lag_seconds",
            "Wall-clock time from a reading's event time to its processing",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.batch = Histogram(
            "crowdsafe_batch_size_messages",
            "Messages per processed batch",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )

    def observe_zone(self, zone_state: dict) -> None:
        zone = zone_state["zone_id"]
        if zone_state["occupancy"] is not None:
            self.occupancy.labels(zone).set(zone_state["occupancy"])
            self.density.labels(zone).set(zone_state["density"])
        unavailable = zone_state["sources"]["stale"] + zone_state["sources"]["offline"]
        self.stale_sources.labels(zone).set(len(unavailable))
