"""Creating the app's topics on a broker: ``ensure_topics`` for the worker, tests and
``crowdsafe kafka up``. The local broker runs with ``auto.create.topics.enable=false``, so
topics exist only with the partition counts asked for here."""

from __future__ import annotations

from collections.abc import Mapping

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

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


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Create each missing topic with its partition count; return the names created.

    Idempotent: existing topics are left alone, and a topic created concurrently by someone
    else (TopicAlreadyExistsError) counts as existing. Raises TopicPartitionsMismatch if an
    existing topic has another partition count.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        existing = set(admin.list_topics())
        created = []
        # One request per topic: kafka-python raises on the first per-topic error of a batch,
        # which would hide whether the other topics of that batch were created.
        for name, partitions in topics.items():
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [NewTopic(name, partitions, replication_factor)], timeout_ms=timeout_ms
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        _check_partitions(admin, topics, skip=created)
        return created
    finally:
        admin.close()


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
