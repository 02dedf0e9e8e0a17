"""The one private Faust API crowdsafe uses still exists and still routes table writes by the
current event's partition (faust_compat's promise; fails loudly on a Faust upgrade)."""

from __future__ import annotations

import faust

from streams.worker import faust_compat


class _Message:
    def __init__(self, partition: int, topic: str) -> None:
        self.partition, self.topic = partition, topic


class _Event:  # Faust keeps a weak reference to the current event
    def __init__(self, message: _Message) -> None:
        self.message = message


def test_private_set_current_event_exists():
    faust_compat.check()  # raises if Stream._set_current_event is gone


def test_set_current_event_makes_the_event_current():
    app = faust.App("compat-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    topic = app.topic("compat-test-topic")
    stream = app.stream(topic)
    event = _Event(_Message(partition=3, topic="compat-test-topic"))
    faust_compat.set_current_event(stream, event)
    assert stream.current_event is event
    # Tables find the partition through faust.streams.current_event (faust/tables/base.py).
    from faust.streams import current_event

    assert current_event() is event
    assert current_event().message.partition == 3


def test_a_recovery_resumes_its_stream_partitions_only_after_seeking_them():
    """The failover fix: Faust's order (resume, then seek) becomes seek, then resume; and the
    partitions are sought back once the recovery has ended (its flow resume clears the queues
    that records fetched after the resume may already be in)."""
    import asyncio
    import inspect

    from faust.tables.recovery import Recovery

    calls: list[str] = []

    class Consumer(_Consumer):
        def resume_partitions(self, tps):
            calls.append(f"resume {sorted(tps)}")

        async def perform_seek(self):
            await asyncio.sleep(0)
            calls.append("seek")

        async def seek_wait(self, offsets):
            calls.append(f"seek uncommitted {sorted(offsets.items())}")

        async def seek(self, tp, offset):
            calls.append(f"rewind {tp} to {offset}")

    class App:
        consumer = Consumer(committed={0: 7})
        consumer_generation_id = 0

    async def faust_like(self, generation_id=0):  # Faust 0.15's order
        self.app.consumer.resume_partitions({1, 0})
        await self.app.consumer.perform_seek()
        calls.append("flow resumed")

    class Recovering:
        app = App()

    asyncio.run(faust_compat.seek_before_resume(faust_like)(Recovering()))
    # Partition 1 has no committed offset: sought to its first offset before it resumes. Once
    # Faust has resumed its flow (clearing the queues), both are sought back where they start.
    assert calls[:4] == ["seek", "seek uncommitted [(1, 3)]", "resume [0, 1]", "flow resumed"]
    assert sorted(calls[4:]) == ["rewind 0 to 7", "rewind 1 to 3"]
    assert "resume_partitions" not in vars(App.consumer)  # the consumer is left as it was

    # And the Faust installed still calls them in the order this fix assumes.
    method = Recovery.on_recovery_completed
    source = inspect.getsource(getattr(method, "__wrapped__", method))
    assert source.index("resume_partitions") < source.index("perform_seek")


class _Consumer:
    """What seek_uncommitted uses of a Faust consumer: its committed offsets, the partitions'
    first offsets (3 each) and a seek that records where it went."""

    def __init__(self, committed: dict, reset: str = "earliest") -> None:
        from types import SimpleNamespace

        self._committed_offset = dict(committed)
        self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))
        self.sought: dict = {}

    async def earliest_offsets(self, *tps):
        return {tp: 3 for tp in tps}

    async def seek_wait(self, offsets):
        self.sought.update(offsets)


def test_a_partition_never_committed_is_sought_to_its_first_offset_and_the_guard_knows_it():
    """Faust seeks only partitions with a committed offset; one without would go on from
    wherever the records dropped during the recovery left it (seen: 480 zone states lost)."""
    import asyncio

    consumer = _Consumer(committed={"a": 10, "b": None})
    sought = asyncio.run(faust_compat.seek_uncommitted(consumer, {"a", "b", "c"}))
    assert sought == consumer.sought == {"b": 3, "c": 3}  # "a" is Faust's own seek's
    assert faust_compat.committed_offset(consumer, "a") == 10
    assert faust_compat.committed_offset(consumer, "c") == 3  # where the guard expects it
    assert faust_compat.committed_offset(consumer, "d") is None
    consumer._committed_offset["c"] = 50  # a commit since: it wins
    assert faust_compat.committed_offset(consumer, "c") == 50


def test_with_reset_latest_no_partition_is_sought():
    import asyncio

    consumer = _Consumer(committed={}, reset="latest")
    assert asyncio.run(faust_compat.seek_uncommitted(consumer, {"a"})) == {}
    assert consumer.sought == {}


def test_send_now_ends_the_linger_of_the_producers_open_batches():
    """The records of a finished batch go at once, not after the producer's linger: the open
    aiokafka batch is closed (no longer lingering) and the sender is woken; a record added
    afterwards starts a new batch. Without it each batch waited out the 20 ms linger."""
    import asyncio
    from types import SimpleNamespace

    from aiokafka.producer.message_accumulator import MessageAccumulator
    from aiokafka.structs import TopicPartition

    async def scenario() -> None:
        acc = MessageAccumulator(None, 16384, 0, 30, linger_ms=60_000)
        tp = TopicPartition("zone-state", 0)
        await acc.add_message(tp, b"z", b"1", timeout=1)
        batch = acc._batches[tp][0]
        assert batch.remaining_linger() > 50  # would linger a minute
        waiter = acc._waiter_future
        producer = SimpleNamespace(_producer=SimpleNamespace(_message_accumulator=acc))
        assert faust_compat.send_now(producer) is True
        assert batch.remaining_linger() is None  # ready to be drained now
        assert waiter.done()  # the sender wakes up to drain it

    asyncio.run(scenario())


def test_send_now_leaves_an_unknown_producer_alone():
    from types import SimpleNamespace

    assert faust_compat.send_now(SimpleNamespace()) is False
