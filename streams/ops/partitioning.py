"""Where a key lands: Kafka's default partitioner (murmur2), as the Java client, kafka-python
and aiokafka place keyed records. Every producer of readings must use it (kcat and other
librdkafka clients: ``-X partitioner=murmur2_random``)."""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


# Cached: the keys are zone ids (a site's few thousand, a city's 100,000), asked for every
# message the worker re-checks and every zone state it sends; murmur2 is pure Python.
@lru_cache(maxsize=1 << 18)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key``.

    >>> [partition_of(z, 4) for z in (b"main-square", b"east-plaza", b"underpass")]
    [0, 1, 1]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
