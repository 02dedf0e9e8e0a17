"""Creating the app's topics on a broker: ``ensure_topics`` for the worker, tests and
``crowdsafe kafka up``. The local broker runs with ``auto.create.topics.enable=false``, so
topics exist only with the partition counts asked for here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.config.kafka import client_kwargs
from streams.config.settings import Settings


class TopicPartitionsMismatch(Exception):
    """A topic exists with a different partition count than asked for. Faust tables are
    co-partitioned with their source topic, so a silent mismatch would mis-route state."""


def app_topics(settings: Settings) -> dict[str, int]:
    """The topics the worker reads and writes, each with ``topic_partitions`` partitions."""
    names = (
        settings.readings_topic,
        settings.zone_state_topic,
        settings.alerts_topic,
        settings.deadletter_topic,
        settings.ticks_topic,
    )
    return dict.fromkeys(names, settings.topic_partitions)


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Per-topic broker settings: alerts are kept for a long time (not compacted: consumers
    rebuild the open alerts from the full history), whatever the broker's default retention."""
    days = settings.alerts_retention_days
    return {settings.alerts_topic: {"retention.ms": str(int(days * 86_400_000))}}


def ensure_app_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """The app's topics, as :func:`app_topics` and :func:`topic_configs` say, on the cluster
    of ``settings`` (its TLS and SASL too); the names created."""
    return ensure_topics(
        bootstrap or settings.kafka_bootstrap,
        app_topics(settings),
        replication_factor=settings.replication_factor,
        timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
        configs=topic_configs(settings),
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


def _check_partitions(admin: KafkaAdminClient, topics: Mapping[str, int], skip: list[str]) -> None:
    names = [n for n in topics if n not in skip]
    if not names:
        return
    wrong = {
        d["name"]: len(d["partitions"])
        for d in admin.describe_topics(names)
        if len(d["partitions"]) != topics[d["name"]]
    }
    if wrong:
        detail = ", ".join(f"{n} has {have} (want {topics[n]})" for n, have in wrong.items())
        raise TopicPartitionsMismatch(
            f"topic partition counts differ: {detail}; delete the topics or the broker's data "
            "dir, or set CROWDSAFE_TOPIC_PARTITIONS to match"
        )
