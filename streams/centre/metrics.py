"""The command centre's own Prometheus metrics (its own registry, served at ``/metrics``)."""

from __future__ import annotations

import time
from collections import Counter as Tally

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class CentreMetrics:
    def __init__(self, feed=None) -> None:  # feed: streams.centre.reader.Feed
        self.registry = r = CollectorRegistry()
        self.feed = feed
        r.register(_FeedCounters(self))
        ProcessCollector(registry=r)  # the centre's own memory and CPU, as the worker's
        self.sse_clients = Gauge(
            "crowdsafe_centre_sse_clients", "Pages connected to the event stream", registry=r
        )
        self.last_record_age = Gauge(
            "crowdsafe_centre_last_record_age_seconds",
            "Seconds since the centre read its newest record (-1: none yet)",
            registry=r,
        )
        self.caught_up = Gauge(
            "crowdsafe_centre_caught_up",
            "1 once the reader has read the topics to their end at start",
            registry=r,
        )
        self.logins = Counter(
            "crowdsafe_centre_logins_total", "Page logins by outcome", ["outcome"], registry=r
        )
        self.refused = Counter(
            "crowdsafe_centre_refused_total",
            "API requests refused, by HTTP status (401: no login, 403: role)",
            ["status"], registry=r,
        )  # fmt: skip
        self.actions = Counter(
            "crowdsafe_centre_actions_total",
            "People's actions sent to Kafka, by topic",
            ["topic"], registry=r,
        )  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        feed = self.feed
        if feed is not None:
            last = feed.last_record_ms
            self.last_record_age.set(-1 if last is None else time.time() - last / 1000)
            self.caught_up.set(1 if feed.caught_up.is_set() else 0)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST.split(";")[0]


class _FeedCounters:
    """The reader's counts (kept by the reader thread as plain ints), as counters."""

    KINDS = ("zone", "incident", "ack", "silence")

    def __init__(self, metrics: CentreMetrics) -> None:
        self.metrics = metrics

    def collect(self):
        feed = self.metrics.feed
        read = CounterMetricFamily(
            "crowdsafe_centre_records_read",
            "Records the centre has read since it started, by topic "
            "(zone: crowd.zone-state, incident: crowd.alerts, ack, silence)",
            labels=["topic"],
        )
        bad = CounterMetricFamily(
            "crowdsafe_centre_records_unusable",
            "Records the centre could not show (not JSON, another version, unknown zone)",
            labels=["topic"],
        )
        for kind in self.KINDS:
            read.add_metric([kind], feed.records.get(kind, 0) if feed else 0)
            bad.add_metric([kind], feed.unusable.get(kind, 0) if feed else 0)
        yield read
        yield bad
        yield from self._open(feed)

    @staticmethod
    def _open(feed) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        """Open incidents of the whole site by category, severity and state, and their alerts
        not cleared by alert kind and severity, read from the view at scrape time (the centre
        sees every zone: workers see only their own)."""
        incidents = GaugeMetricFamily(
            "crowdsafe_incidents_open",
            "Open incidents (not resolved) of the whole site, by category, severity and state",
            labels=["category", "severity", "state"],
        )
        alerts = GaugeMetricFamily(
            "crowdsafe_alerts_open",
            "Alerts not cleared in the site's open incidents, by alert kind and severity",
            labels=["kind", "severity"],
        )
        if feed is None:
            return incidents, alerts
        by_incident: Tally[tuple[str, ...]] = Tally()
        by_alert: Tally[tuple[str, ...]] = Tally()
        with feed.lock:
            for rec in feed.view.incidents():
                by_incident[rec["category"], rec["severity"], rec["state"]] += 1
                for member in rec["members"]:
                    if member["state"] != "cleared":
                        by_alert[member["kind"], member["severity"]] += 1
        for family, counts in ((incidents, by_incident), (alerts, by_alert)):
            for key, n in sorted(counts.items()):
                family.add_metric(list(key), n)
        return incidents, alerts
