"""Creating the app's topics on a broker: ``ensure_topics`` for the worker, tests and
``crowdsafe kafka up``. The local broker runs with ``auto.create.topics.enable=false``, so
topics exist only with the partition counts asked for here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.config.kafka import client_kwargs
from streams.config.settings import Settings
from streams.config.site import Site, SiteError, load_site


class TopicPartitionsMismatch(Exception):
    """A topic exists with a different partition count than asked for. Faust tables are
    co-partitioned with their source topic, so a silent mismatch would mis-route state."""


def app_topics(settings: Settings, site: Site | None = None) -> dict[str, int]:
    """The topics the worker reads and writes, each with ``topic_partitions`` partitions (all
    keyed by zone id), with one dispatch topic per route of ``site``."""
    return dict.fromkeys(
        (*_input_topics(settings), *kept_topics(settings, site)), settings.topic_partitions
    )


def _input_topics(settings: Settings) -> tuple[str, ...]:
    return (
        settings.readings_topic,
        settings.zone_state_topic,
        settings.deadletter_topic,
        settings.ticks_topic,
        settings.silences_topic,
    )


def kept_topics(settings: Settings, site: Site | None = None) -> list[str]:
    """The record of what happened: alerts, acknowledgements, audit, CAP and the routes."""
    routes = [settings.dispatch_topic(r.id) for r in site.routes] if site else []
    fixed = [settings.alerts_topic, settings.acks_topic, settings.audit_topic, settings.cap_topic]
    return fixed + routes


def topic_configs(settings: Settings, site: Site | None = None) -> dict[str, dict[str, str]]:
    """Per-topic broker settings: the record of what happened is kept for a long time (not
    compacted: consumers rebuild the open incidents from the full history), whatever the
    broker's default retention."""
    retention = {"retention.ms": str(int(settings.alerts_retention_days * 86_400_000))}
    return {name: dict(retention) for name in kept_topics(settings, site)}


def ensure_app_topics(
    settings: Settings, bootstrap: str | None = None, site: Site | None = None
) -> list[str]:
    """The app's topics, as :func:`app_topics` and :func:`topic_configs` say, on the cluster
    of ``settings`` (its TLS and SASL too); the names created. ``site``: whose routes get a
    topic (default: the settings' site file, if it loads; the worker checks it anyway)."""
    if site is None:
        try:
            site = load_site(settings.site)
        except SiteError:
            site = None
    return ensure_topics(
        bootstrap or settings.kafka_bootstrap,
        app_topics(settings, site),
        replication_factor=settings.replication_factor,
        timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
        configs=topic_configs(settings, site),
        client=client_kwargs(settings),
    )


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout_ms: int = 30_000,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    client: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create each missing topic with its partition count (and ``configs``); return the names
    created. ``client``: connection settings (TLS, SASL) from :func:`client_kwargs`.

    Idempotent: existing topics are left alone except that their ``configs`` are set, and a
    topic created concurrently by someone else (TopicAlreadyExistsError) counts as existing.
    Raises TopicPartitionsMismatch if an existing topic has another partition count.
    """
    configs = configs or {}
    connection = dict(client or {})
    connection["bootstrap_servers"] = bootstrap
    admin = KafkaAdminClient(
        **connection, request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms
    )
    try:
        existing = set(admin.list_topics())
        created = []
        # One request per topic: kafka-python raises on the first per-topic error of a batch,
        # which would hide whether the other topics of that batch were created.
        for name, partitions in topics.items():
            if name in existing:
                continue
            try:
                topic = NewTopic(
                    name, partitions, replication_factor, topic_configs=dict(configs.get(name, {}))
                )
                admin.create_topics([topic], timeout_ms=timeout_ms)
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        _check_partitions(admin, topics, skip=created)
        _set_configs(admin, {n: c for n, c in configs.items() if n in topics and n not in created})
        return created
    finally:
        admin.close()


def _set_configs(admin: KafkaAdminClient, configs: Mapping[str, Mapping[str, str]]) -> None:
    """Set the topics' configs where they differ (an older topic made with broker defaults)."""
    if not configs:
        return
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in configs]
    # kafka-python 3: {"topic": {name: {config: {"value": ...}}}}, the topic's own values
    found = admin.describe_configs(resources).get("topic", {})
    have = {n: {k: e.get("value") for k, e in entries.items()} for n, entries in found.items()}
    changes = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs=dict(wanted))
        for name, wanted in configs.items()
        if any(str(have.get(name, {}).get(k)) != v for k, v in wanted.items())
    ]
    if changes:
        admin.alter_configs(changes)


def _check_partitions(
    admin: KafkaAdminClient, topics: Mapping[str, int], skip: list[str], settle_s: float = 15
) -> None:
    names = [n for n in topics if n not in skip]
    if not names:
        return
    deadline = time.monotonic() + settle_s
    while True:
        have = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
        # No partitions at all: a topic just created (by another process) whose metadata has
        # not reached this broker yet; every topic has at least one, so ask again.
        if all(have.get(n, 0) > 0 for n in names) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    wrong = {n: k for n, k in have.items() if k != topics[n]}
    if wrong:
        detail = ", ".join(f"{n} has {k} (want {topics[n]})" for n, k in wrong.items())
        raise TopicPartitionsMismatch(
            f"topic partition counts differ: {detail}; delete the topics or the broker's data "
            "dir, or set CROWDSAFE_TOPIC_PARTITIONS to match"
        )
