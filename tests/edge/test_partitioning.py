"""Readings (kafka-python at the edge) and the worker's ticks (aiokafka inside Faust) must land a
zone in the same partition: both hash the key with Kafka's murmur2."""

import pytest
from aiokafka.partitioner import DefaultPartitioner as WorkerPartitioner
from kafka.partitioner.default import murmur2

from streams.config.paths import bundled_site
from streams.config.site import load_site

SITE = load_site(bundled_site())


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 8, 16])
def test_edge_and_worker_put_every_zone_in_the_same_partition(partitions):
    all_partitions = list(range(partitions))
    for zone in SITE.zones:
        key = zone.id.encode()
        edge = (murmur2(key) & 0x7FFFFFFF) % partitions  # kafka-python DefaultPartitioner
        worker = WorkerPartitioner()(key, all_partitions, all_partitions)
        assert edge == worker, zone.id
