"""The crowdsafe worker, built from settings by :func:`build_app`: readings in, zone state and
alerts out.

crowd.readings (keyed by zone_id) ──process──▶ crowd.zone-state
{app_id}.ticks (one per partition) ─┘  │  └──▶ crowd.alerts
                                       └─────▶ crowd.deadletter

Nothing happens at import time: ``crowdsafe worker`` (and any test) calls :func:`build_app`,
which loads the site, creates the Faust app, its topics and table, and registers the agent, the
timer and the web views on that app only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import faust

from streams.config.kafka import faust_credentials
from streams.config.settings import Settings
from streams.config.site import Site, load_site
from streams.ops.partitioning import partition_of
from streams.worker import faust_compat
from streams.worker.health import Health
from streams.worker.metrics import WorkerMetrics, zones_with_series
from streams.worker.offsets import OffsetGuard
from streams.worker.state_view import LiveView
from streams.zone.clock import EventTimePolicy
from streams.zone.processor import ZoneProcessor

_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


@dataclass
class Topics:
    inputs: faust.TopicT  # readings and ticks, co-partitioned
    readings: faust.TopicT  # to re-route a reading placed in the wrong partition
    ticks: faust.TopicT
    zone_state: faust.TopicT
    alerts: faust.TopicT
    deadletter: faust.TopicT
    acks: faust.TopicT  # acknowledgements and resolutions (also read by the agent: inputs)
    silences: faust.TopicT
    audit: faust.TopicT
    cap: faust.TopicT
    dispatch: dict[str, faust.TopicT]  # by route id (site file [[routes]])


@dataclass
class WorkerApp:
    """One worker: the Faust app and everything its agent uses, built from settings."""

    settings: Settings
    site: Site
    faust: faust.App
    topics: Topics
    zones: faust.types.TableT  # per-zone state, changelogged
    incidents: faust.types.TableT  # per-zone incidents, silences, escalation clocks (changelogged)
    processor: ZoneProcessor
    metrics: WorkerMetrics
    view: LiveView = field(default_factory=LiveView)
    health: Health = field(default_factory=Health)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    # Site zones by the readings partition their key maps to (Kafka's murmur2, as producers use).
    zones_by_partition: dict[int, list[str]] = field(default_factory=dict)
    desk: object = None  # streams.worker.incidents.IncidentDesk, made with the agent
    # Zones whose newest readings are simulated (the simulator, a replay): in memory only, so
    # after a restart until their next reading a zone is taken for live.
    simulated: dict[str, bool] = field(default_factory=dict)
    # Input offsets in order, none skipped by the consumer (streams/worker/offsets.py).
    offsets: OffsetGuard = field(default_factory=OffsetGuard)


def build_app(settings: Settings, site: Site | None = None) -> WorkerApp:
    """The worker's Faust app with its topics, table, agent, silence timer and web views."""
    faust_compat.check()
    faust_compat.fix_fetcher_close()  # SIGTERM while the broker is down: no 60 s wait
    faust_compat.fix_recovery_seek_order()  # a failover loses no message
    site = site or load_site(settings.site)
    app = faust_app(settings)
    n = settings.topic_partitions
    worker = WorkerApp(
        settings=settings,
        site=site,
        faust=app,
        topics=_topics(app, settings, site),
        # Per-zone state (sources, gate integral, detectors, alert episodes): changelogged, so a
        # restart recovers it. Values are raw bytes (value_type=bytes: Faust's "raw" codec) that
        # the agent decodes and encodes itself (streams.zone.state), once per zone per batch;
        # older JSON records are migrated. Keys stay JSON strings, as the changelog has them.
        zones=app.Table("zones", partitions=n, value_type=bytes),
        incidents=app.Table("incidents", partitions=n, value_type=bytes),
        processor=ZoneProcessor(site, clock=event_time_policy(settings)),
        metrics=WorkerMetrics(
            zone_series=zones_with_series([z.id for z in site.zones], settings.metrics_zone_limit)
        ),
        zones_by_partition=_zones_by_partition(site, n),
    )
    worker.metrics.watch_health(worker.health)
    worker.metrics.watch_lag(app)
    # Imported here, not at module level: each registers on this app only.
    from streams.worker.agent import register_agent
    from streams.worker.views import register_views
    from streams.worker.webhooks import register_webhooks

    register_agent(worker)
    register_webhooks(worker)
    register_views(worker)
    return worker


def event_time_policy(settings: Settings) -> EventTimePolicy:
    """The one event-time policy of this worker (streams/zone/clock.py), from settings."""
    return EventTimePolicy(
        allowed_lateness_ms=int(settings.allowed_lateness_s * 1000),
        max_skew_ms=int(settings.max_clock_skew_s * 1000),
    )


def faust_app(settings: Settings) -> faust.App:
    """The Faust app of this worker: cluster, local state, web server, group membership."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),  # TLS and SASL as configured
        store=settings.store,
        datadir=str(settings.worker_state_dir),
        topic_partitions=settings.topic_partitions,
        # Faust's own topics (the tables' changelogs: all the zones' learned state) are
        # replicated as the app's, not with Faust's default of 1.
        topic_replication_factor=settings.replication_factor,
        web_host=settings.web_host,
        web_bind=settings.web_host,  # Faust binds 0.0.0.0 unless told
        web_port=settings.web_port,
        # Faust's own pages expose the internal table and routing: not for users.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        # Static membership: a restarted worker takes back its partitions without waiting for
        # the group to expire its old session; a dead one is replaced after session_timeout_s.
        consumer_group_instance_id=f"{settings.app_id}-{settings.worker_name}",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        producer_linger=0.02,
        # A record batch holds ~700 zone states (Faust's default, 16 KB, ~20): fewer produce
        # requests, and a batch's zone states of one partition go in one or a few of them.
        producer_max_batch_size=512 * 1024,
        # What an edge producer can send (kafka-python's and the Java client's 1 MiB), the worker
        # can send on: a re-routed message of up to 1 MB plus key and headers (Faust: 1,000,000).
        producer_max_request_size=1_048_576,
        # Per partition and fetch (Faust's default 1 MiB, ~1,200 zone states): a worker rebuilding
        # its tables from the changelogs waited on fetch round trips; with 4 MiB the replay of
        # 10,000 zones' changelog took 5.0-5.2 s instead of 8.6-8.8 (16 MiB: no better).
        consumer_max_fetch_size=4 * 1024 * 1024,
        autodiscover=False,
    )


def _topics(app: faust.App, settings: Settings, site: Site) -> Topics:
    n = settings.topic_partitions
    s = settings
    return Topics(
        # The agent reads them all, co-partitioned by zone id: tick partition p wakes the sweep
        # of readings partition p; acknowledgements and silences act on that partition's zones.
        inputs=app.topic(
            s.readings_topic, s.ticks_topic, s.acks_topic, s.silences_topic, partitions=n, **_RAW
        ),
        readings=app.topic(settings.readings_topic, partitions=n, **_RAW),
        ticks=app.topic(settings.ticks_topic, partitions=n, **_RAW),
        zone_state=app.topic(settings.zone_state_topic, partitions=n, **_RAW),
        alerts=app.topic(settings.alerts_topic, partitions=n, **_RAW),
        deadletter=app.topic(settings.deadletter_topic, partitions=n, **_RAW),
        acks=app.topic(s.acks_topic, partitions=n, **_RAW),
        silences=app.topic(s.silences_topic, partitions=n, **_RAW),
        audit=app.topic(s.audit_topic, partitions=n, **_RAW),
        cap=app.topic(s.cap_topic, partitions=n, **_RAW),
        dispatch={
            r.id: app.topic(s.dispatch_topic(r.id), partitions=n, **_RAW) for r in site.routes
        },
    )


def _zones_by_partition(site: Site, partitions: int) -> dict[int, list[str]]:
    """The site's zones by the readings partition their id maps to."""
    out: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for zone in site.zones:
        out[partition_of(zone.id.encode(), partitions)].append(zone.id)
    return out
