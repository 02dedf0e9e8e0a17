"""Zone states leave as one record batch per partition (aiokafka's batch API), each zone's in
order and in the partition Kafka's default partitioner gives its key; a full batch is sent and
another started; nothing is sent before delivered(), which waits for every batch."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from streams.ops.partitioning import partition_of
from streams.worker.publish import Publisher

TOPIC = "t.zone-state"


class FakeProducer:
    """aiokafka's batch API without a broker: keeps each batch submitted, sealed."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[int, list[tuple[bytes, bytes]], bool]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        assert topic == TOPIC
        return {0, 1, 2, 3}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        closed = batch._closed
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytes(batch._build()))]
        self.sent.append((partition, records, closed))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def publisher(producer: FakeProducer) -> Publisher:
    w = SimpleNamespace(
        settings=SimpleNamespace(topic_partitions=4),
        faust=SimpleNamespace(producer=SimpleNamespace(_producer=producer)),
        topics=SimpleNamespace(zone_state=SimpleNamespace(get_topic_name=lambda: TOPIC)),
    )
    return Publisher(w)


def run(producer: FakeProducer, records: list[tuple[bytes, bytes]]) -> None:
    pub = publisher(producer)

    async def scenario() -> None:
        pub._zone_states.extend(records)
        assert producer.sent == []  # nothing before delivered()
        await pub.delivered()
        assert pub._zone_states == [] and pub._pending == []

    asyncio.run(scenario())


def test_each_partition_gets_its_zones_records_in_order():
    zones = [b"main-square", b"east-plaza", b"underpass", b"ticket-hall", b"entrance-east"]
    records = [(z, b'{"ts":%d}' % i) for i in range(30) for z in zones]
    producer = FakeProducer(512 * 1024)
    run(producer, records)
    assert all(closed for _, _, closed in producer.sent)  # sealed: no linger
    by_partition = {p: recs for p, recs, _ in producer.sent}
    assert len(by_partition) == len(producer.sent)  # one batch per partition here
    for zone in zones:
        got = [v for k, v in by_partition[partition_of(zone, 4)] if k == zone]
        assert got == [v for k, v in records if k == zone]


def test_a_full_batch_is_sent_and_another_started():
    records = [(b"ticket-hall", b"x" * 700) for _ in range(50)]
    producer = FakeProducer(16 * 1024)  # ~20 such records
    run(producer, records)
    assert len(producer.sent) >= 3
    assert {p for p, _, _ in producer.sent} == {partition_of(b"ticket-hall", 4)}
    assert sum(len(recs) for _, recs, _ in producer.sent) == 50
