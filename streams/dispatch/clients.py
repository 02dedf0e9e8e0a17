"""The Kafka side of the dispatch clients (kafka-python, as the edge uses): reading a topic's
history up to given offsets, bounded, and sending keyed records (acknowledgements, silences).

Connection settings (TLS, SASL) come from :func:`streams.config.kafka.client_kwargs`; a client
that cannot reach the cluster raises a ``KafkaError`` after ``kafka_connect_timeout_s``, which
the CLI reports in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from streams.config.kafka import client_kwargs
from streams.config.settings import Settings


class TopicMissing(RuntimeError):
    """The topic does not exist on the cluster (or this principal may not describe it)."""


def consumer(settings: Settings, group: str | None = None, **kw: Any) -> KafkaConsumer:
    """A consumer that commits only when told (``enable_auto_commit=False``)."""
    return KafkaConsumer(
        **client_kwargs(settings),
        bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kw,
    )


def partitions(c: KafkaConsumer, topic: str) -> list[TopicPartition]:
    found = c.partitions_for_topic(topic)
    if not found:
        raise TopicMissing(f"topic {topic} does not exist (the worker or `crowdsafe kafka up` "
                           "creates it) or may not be read with these credentials")  # fmt: skip
    return [TopicPartition(topic, p) for p in sorted(found)]


def committed(c: KafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
    """The group's committed offset of each partition (None: never committed)."""
    return {tp: c.committed(tp) for tp in tps}


def read_until(
    c: KafkaConsumer,
    stop: dict[TopicPartition, int],
    handle: Callable[[Any], None],
    timeout_s: float,
) -> bool:
    """Assign ``stop``'s partitions to ``c`` from their beginning and pass every record before
    each partition's ``stop`` offset to ``handle``, in partition order within a partition.
    Bounded by the offsets and by ``timeout_s`` (a topic that cannot be read): False if the
    time ran out first."""
    tps = list(stop)
    c.assign(tps)
    c.seek_to_beginning(*tps)
    begin = c.beginning_offsets(tps)
    todo = {tp for tp in tps if stop[tp] > begin[tp]}
    for tp in tps:
        if tp not in todo:
            c.pause(tp)
    deadline = time.monotonic() + timeout_s
    while todo:
        if time.monotonic() > deadline:
            return False
        for tp, records in c.poll(timeout_ms=500).items():
            for r in records:
                if r.offset < stop[tp]:
                    handle(r)
            if c.position(tp) >= stop[tp]:
                todo.discard(tp)
                c.pause(tp)
        # a partition whose last records were deleted or are transaction markers
        for tp in list(todo):
            if c.position(tp) >= stop[tp]:
                todo.discard(tp)
    return True


def read_to_end(settings: Settings, topic: str, timeout_s: float = 60) -> list:
    """Every record (``ConsumerRecord``) ``topic`` holds now, partition by partition; records
    written meanwhile are not waited for. Raises TimeoutError after ``timeout_s``."""
    c = consumer(settings)
    try:
        tps = partitions(c, topic)
        out: list = []
        if not read_until(c, c.end_offsets(tps), out.append, timeout_s):
            raise TimeoutError(f"{topic} not read to its end in {timeout_s:g}s")
        return out
    finally:
        c.close()


def commit(c: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    c.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})


def producer(settings: Settings) -> KafkaProducer:
    """A producer for a person's actions: every record acknowledged by all replicas."""
    return KafkaProducer(
        **client_kwargs(settings),
        bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000),
        acks="all",
        max_block_ms=int(settings.kafka_connect_timeout_s * 1000),
    )


def send(p: KafkaProducer, topic: str, key: str, value: bytes, timeout_s: float = 30) -> Any:
    """Send one record keyed by ``key`` (the default murmur2 partitioner, as the worker and
    ``kcat -X partitioner=murmur2_random`` place it) and wait for it: its RecordMetadata."""
    return p.send(topic, key=key.encode(), value=value).get(timeout=timeout_s)
