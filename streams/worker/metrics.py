"""Prometheus metrics of the worker. Names carry units and ``_total``; labels stay low-cardinality
(kinds and reasons a handful). Zone ids are a few dozen at a station, but a city has tens of
thousands: per-zone series exist only for the zones given (``CROWDSAFE_METRICS_ZONE_LIMIT``,
:func:`zones_with_series`); every zone counts in ``crowdsafe_zones{kind, level}``."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections import Counter as Tally
from collections.abc import Collection, Iterator
from typing import NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from streams.schema.payloads import ZoneState

# The ``zone`` label of a per-zone counter for a zone without series of its own (no zone id
# starts with "_", so it names none).
OTHER_ZONES = "_other"
LEVELS = ("ok", "warning", "critical", "unknown")


def zones_with_series(zone_ids: list[str], limit: int) -> frozenset[str] | None:
    """The zones that get per-zone series: the first ``limit`` of the site file, in its order
    (put the ones dashboards watch first), or None (every zone) when the site has no more.

    >>> sorted(zones_with_series(["a", "b", "c"], 2))
    ['a', 'b']
    >>> zones_with_series(["a", "b"], 2) is None
    True
    """
    return None if len(zone_ids) <= limit else frozenset(zone_ids[:limit])


class WorkerMetrics:
    """All worker metrics on one registry (passed explicitly so tests get a clean one)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, zone_series: Collection[str] | None = None
    ) -> None:
        """``zone_series``: the zones with per-zone series (None: all; :func:`zones_with_series`)."""
        self.registry = registry or CollectorRegistry()
        self.zone_series = zone_series
        # Each zone's kind, level and density over its critical threshold, for the per-kind
        # aggregates read at scrape time: a few dozen bytes per zone, whatever the limit.
        self._levels: dict[str, tuple[str, str, float]] = {}
        r = self.registry
        r.register(_ZoneLevels(self._levels))
        # The worker process's memory, CPU and open files (process_*), and the Python version.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.readings = Counter(
            "crowdsafe_readings_total", "Readings accepted, by source kind", ["kind"], registry=r
        )
        self.rejected = Counter(
            "crowdsafe_readings_rejected_total",
            "Messages sent to the dead-letter topic, by reason class",
            ["reason"],
            registry=r,
        )
        self.rerouted = Counter(
            "crowdsafe_readings_rerouted_total",
            "Readings found in a partition their key does not map to, sent on to the right one",
            registry=r,
        )
        self.seq_resets = Counter(
            "crowdsafe_source_seq_resets_total",
            "Readings accepted although their source's seq went back (a restarted counter)",
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
        self.incident_transitions = Counter(
            "crowdsafe_incident_transitions_total",
            "Incident transitions published on crowd.alerts (held: why sent to no route)",
            ["category", "transition", "severity", "held"],
            registry=r,
        )
        self.offset_gaps = Counter(
            "crowdsafe_consumer_offset_gaps_total",
            "Input offsets the consumer moved past without delivering them (streams/worker/"
            "offsets.py): sought back, or accepted as real after the settle time",
            ["outcome"],
            registry=r,
        )
        self.incident_errors = Counter(
            "crowdsafe_incident_errors_total",
            "Zone batches whose incidents could not be updated (an internal error, logged)",
            registry=r,
        )
        self.routed = Counter(
            "crowdsafe_incident_routed_total",
            "Incident transitions sent to a route's topic",
            ["route"],
            registry=r,
        )
        self.occupancy = Gauge(
            "crowdsafe_zone_occupancy_persons", "Fused zone occupancy", ["zone"], registry=r
        )
        self.density = Gauge(
            "crowdsafe_zone_density_persons_per_square_metre", "Zone density", ["zone"], registry=r
        )
        # Thresholds as series too, so alert rules and dashboards compare density per zone
        # against the site file's values instead of copies of them.
        self.density_warning = Gauge(
            "crowdsafe_zone_density_warning_persons_per_square_metre",
            "Zone warning density threshold",
            ["zone"],
            registry=r,
        )
        self.density_critical = Gauge(
            "crowdsafe_zone_density_critical_persons_per_square_metre",
            "Zone critical density threshold",
            ["zone"],
            registry=r,
        )
        # Wall-clock time of the zone's last processed reading: a zone whose sources all go
        # silent produces no new zone state, so only this shows it (time() - this grows).
        self.last_update = Gauge(
            "crowdsafe_zone_last_update_timestamp_seconds",
            "Unix time the zone's state was last updated by this worker",
            ["zone"],
            registry=r,
        )
        self.anomaly = Gauge(
            "crowdsafe_zone_anomaly_score",
            "Zone anomaly score, 0-1 (no series while warming up or blind)",
            ["zone"],
            registry=r,
        )
        self.time_to_critical = Gauge(
            "crowdsafe_zone_time_to_critical_seconds",
            "Forecast time until the zone reaches critical density (0: there; no series "
            "when not heading there or blind)",
            ["zone"],
            registry=r,
        )
        self.stale_sources = Gauge(
            "crowdsafe_zone_sources_unavailable", "Stale or offline sources", ["zone"], registry=r
        )
        self.state_resets = Counter(
            "crowdsafe_zone_state_resets_total",
            "Zones whose stored state could not be decoded and was started afresh",
            ["zone"],
            registry=r,
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
        # webhooks (streams/worker/webhooks.py): labelled by route id, a handful per site
        self.webhook_deliveries = Counter(
            "crowdsafe_webhook_deliveries_total",
            "Route messages POSTed to the route's webhook, by outcome (delivered, failed: "
            "dead-lettered after every attempt, skipped: older than the route's max_age_s)",
            ["route", "outcome"],
            registry=r,
        )
        self.webhook_retries = Counter(
            "crowdsafe_webhook_retries_total",
            "Webhook POSTs retried after a connection error, a timeout, HTTP 5xx or 429",
            ["route"],
            registry=r,
        )

    def watch_health(self, health) -> None:
        """Export the agent's health (streams.worker.health.Health), read at scrape time."""
        up = Gauge(
            "crowdsafe_agent_up", "1 while the processing agent runs", registry=self.registry
        )
        up.set_function(lambda: 1.0 if health.agent_running else 0.0)
        last = Gauge(
            "crowdsafe_agent_last_batch_timestamp_seconds",
            "Unix time the agent last finished a batch (0: none yet)",
            registry=self.registry,
        )
        last.set_function(lambda: health.last_batch_at or 0.0)

    def watch_lag(self, app) -> None:
        """Export the consumer lag of each input partition this worker holds, read at scrape
        time from Faust's monitor (``app``: the worker's Faust app)."""
        self.registry.register(_ConsumerLag(app))

    def sample_names(self) -> set[str]:
        """Every series name this registry can export (``_total``, ``_bucket``... included), even
        for labelled metrics with no sample yet: what rules and dashboards may refer to."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",),
        }
        return {
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        } | {_ConsumerLag.NAME}  # read at scrape time, once a worker holds partitions

    def forget_zones(self) -> None:
        """Partitions moved: drop the zones from the per-kind aggregates until they are
        published again, so two workers never both count a zone that moved."""
        self._levels.clear()

    def zone_label(self, zone_id: str) -> str:
        """``zone_id``, or :data:`OTHER_ZONES` for a zone without series of its own."""
        if self.zone_series is None or zone_id in self.zone_series:
            return zone_id
        return OTHER_ZONES

    def observe_zone(self, zone_state: ZoneState, from_readings: bool = True) -> None:
        """Export a zone's state; ``from_readings=False`` for the silence sweep, which must not
        look like a reading (it would reset the silent-zone alert's clock)."""
        zone = zone_state.zone_id
        self._levels[zone] = _level(zone_state)
        if self.zone_series is not None and zone not in self.zone_series:
            return  # counted in crowdsafe_zones only
        if zone_state.occupancy is not None:
            self.occupancy.labels(zone).set(zone_state.occupancy)
            self.density.labels(zone).set(zone_state.density)
        else:
            # No fresh source: drop the series rather than keep exporting the last value, so a
            # blind zone reads as "unknown" (and stops any density alert) instead of frozen.
            for gauge in (self.occupancy, self.density):
                try:
                    gauge.remove(zone)
                except KeyError:
                    pass
        for gauge, value in (
            (self.anomaly, zone_state.anomaly_score),
            (self.time_to_critical, _seconds(zone_state.minutes_to_critical)),
        ):
            if value is None:  # unknown is no series, never a stale number
                try:
                    gauge.remove(zone)
                except KeyError:
                    pass
            else:
                gauge.labels(zone).set(value)
        self.density_warning.labels(zone).set(zone_state.warning)
        self.density_critical.labels(zone).set(zone_state.critical)
        if from_readings:
            self.last_update.labels(zone).set_to_current_time()
        unavailable = zone_state.sources.stale + zone_state.sources.offline
        self.stale_sources.labels(zone).set(len(unavailable))


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60


def _level(zone_state: ZoneState) -> tuple[str, str, float]:
    """(kind, level, density / critical) of a published zone state; blind: unknown, 0."""
    density = zone_state.density
    if density is None:
        return zone_state.kind, "unknown", 0.0
    if density >= zone_state.critical:
        level = "critical"
    elif density >= zone_state.warning:
        level = "warning"
    else:
        level = "ok"
    return zone_state.kind, level, density / zone_state.critical


class _ZoneLevels:
    """``crowdsafe_zones{kind, level}`` and ``crowdsafe_zones_max_density_critical_ratio{kind}``:
    per-kind aggregates over every zone this worker has published since it started (or its
    partitions last moved), so a city with per-zone series limited still shows how many zones
    are at warning or critical."""

    def __init__(self, levels: dict[str, tuple[str, str, float]]) -> None:
        self.levels = levels

    def describe(self):
        """The families without their samples: the registry knows their names without a tally
        over every zone, so a scrape that asks for other names skips it (:func:`exposition`)."""
        return self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        zones = GaugeMetricFamily(
            "crowdsafe_zones",
            "Zones this worker published since it started or its partitions last moved, by "
            "kind and density level (ok, warning, critical; unknown: no fresh source)",
            labels=["kind", "level"],
        )
        ratio = GaugeMetricFamily(
            "crowdsafe_zones_max_density_critical_ratio",
            "Highest density over critical density among this worker's zones, by kind",
            labels=["kind"],
        )
        return zones, ratio

    def collect(self):
        zones, ratio = self._families()
        counts = Tally((kind, level) for kind, level, _ in self.levels.values())
        worst: dict[str, float] = {}
        for kind, _, r in self.levels.values():
            worst[kind] = max(r, worst.get(kind, 0.0))
        for kind in sorted({k for k, _ in counts}):
            for level in LEVELS:
                zones.add_metric([kind, level], counts.get((kind, level), 0))
            ratio.add_metric([kind], worst[kind])
        yield zones
        yield ratio


class _ConsumerLag:
    """``crowdsafe_consumer_lag_messages{topic, partition}``: the partition's end offset minus
    the offset this worker has committed, as Faust last saw them (the end offset is refreshed
    with every fetch, so a partition with nothing new shows its true lag of 0 after a commit)."""

    NAME = "crowdsafe_consumer_lag_messages"

    def __init__(self, app) -> None:
        self.app = app

    def describe(self):
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME,
            "Messages of each input partition this worker holds not yet committed",
            labels=["topic", "partition"],
        )

    def collect(self):
        family = self._family()
        monitor = self.app.monitor
        ends = dict(monitor.tp_end_offsets or {})
        done = dict(monitor.tp_committed_offsets or {})
        for tp, end in sorted(ends.items()):
            if tp in done:
                family.add_metric([tp.topic, str(tp.partition)], max(end - done[tp], 0))
        yield family


def exposition(registry: CollectorRegistry, names: Collection[str] = ()) -> bytes:
    """The text format of ``registry``, or of only the series ``names`` (``/metrics?name[]=...``,
    as prometheus_client's own handler offers): the bench and the tests poll a few counters
    several times a second, and a whole scrape of a city's worker (every zone tallied, a
    thousand zones' series) took ~9 % of its CPU at two polls a second.

    >>> m = WorkerMetrics()
    >>> m.readings.labels(kind="camera").inc(3)
    >>> exposition(m.registry, ["crowdsafe_readings_total"]).decode().splitlines()[-1]
    'crowdsafe_readings_total{kind="camera"} 3.0'
    >>> b"crowdsafe_zones" in exposition(m.registry, ["crowdsafe_readings_total"])
    False
    """
    return generate_latest(registry.restricted_registry(names) if names else registry)


# --- read back: the bench and the test harness (streams.testing) scrape a running worker ----


def scrape(port: int, timeout: float = 10, names: Collection[str] = ()) -> str:
    """The text of the ``/metrics`` a worker serves on ``127.0.0.1:port``, only the series
    ``names`` if given (an OSError when it does not answer)."""
    query = urllib.parse.urlencode([("name[]", n) for n in names])
    url = f"http://127.0.0.1:{port}/metrics" + (f"?{query}" if query else "")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
        return resp.read().decode()


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]  # values as written (escapes kept: no label of ours has any)
    value: float


# A sample line of the text format: name, {labels}, value (comments and blank lines do not
# match). A regex, not prometheus_client's parser: several times slower, and the bench polls.
_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, prefix: str = "") -> Iterator[Sample]:
    """Every sample of a ``/metrics`` text whose name starts with ``prefix`` (a cheap filter:
    with per-zone series, a worker's text has thousands of lines).

    >>> list(samples('# TYPE c counter\\nc_total{kind="gate",le="+Inf"} 2.0\\nup 1', "c_"))
    [Sample(name='c_total', labels={'kind': 'gate', 'le': '+Inf'}, value=2.0)]
    """
    for line in text.splitlines():
        if line.startswith(prefix) and (m := _LINE.match(line)):
            yield Sample(m[1], dict(_LABEL.findall(m[2])) if m[2] else {}, float(m[3]))
