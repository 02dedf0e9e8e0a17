"""The one place crowdsafe touches Faust's private API.

A Faust table routes a write to the changelog partition of the stream's *current event*. The
agent handles a batch that spans partitions and writes each zone's entry once per batch, so
before each zone's lookup and write it makes one of that zone's own events current. Faust has no
public call for this (faust-streaming 0.15: ``Stream._set_current_event``); if a Faust upgrade
removes or renames it, :func:`check` fails at start-up and ``tests/worker/test_faust_compat.py``
fails in CI, instead of zones silently landing in the wrong partition.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust

log = logging.getLogger(__name__)


def set_current_event(stream: faust.StreamT, event: faust.EventT | None) -> None:
    """Make ``event`` the stream's current event (table reads and writes use its partition)."""
    stream._set_current_event(event)  # noqa: SLF001 - see the module docstring


@contextmanager
def current_event(stream: faust.StreamT, event: faust.EventT) -> Iterator[None]:
    """Make ``event`` current for the table reads and writes in the block, then restore the
    event that was current before. The block must not await.

    ``Stream.take_events`` reads ``stream.current_event`` to pair each buffered value with its
    event *after* waiting for the agent to finish the previous batch; leaving one of our own
    events current there paired the next message's value with an old event: the agent then
    re-processed the old event (counted as duplicates) and never saw the new message (lost).
    """
    previous = stream.current_event
    set_current_event(stream, event)
    try:
        yield
    finally:
        set_current_event(stream, previous)


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """Where ``tp`` must be read from: the consumer's committed offset (the next to read), as
    Faust last sought or committed it, or else the first offset of the partition a recovery
    sought it to (:func:`seek_uncommitted`); None if neither is known (faust-streaming 0.15:
    ``Consumer._committed_offset``)."""
    found = getattr(consumer, "_committed_offset", {})  # noqa: SLF001 - see the module docstring
    offset = found.get(tp)
    if offset is None:
        offset = vars(consumer).get(_STARTED_AT, {}).get(tp)
    return offset


# Where a recovery sought the stream partitions that have no committed offset (see
# seek_uncommitted), kept on the Faust consumer for committed_offset.
_STARTED_AT = "_crowdsafe_started_at"


def aiokafka_producer(producer: Any) -> Any:
    """The aiokafka producer a Faust producer (the app's ``producer``) sends with, once started;
    None before (faust-streaming 0.15: ``Producer._producer``)."""
    return getattr(producer, "_producer", None)  # noqa: SLF001 - see the module docstring


def send_now(producer: Any) -> bool:
    """Make the producer send what it holds back for its linger time at once; False if this
    aiokafka has no such buffers (then they go after the linger, as before).

    The agent sends a batch's records, then waits for all of them before it writes the table and
    commits: by then nothing more is coming, and the last records' linger (20 ms) was pure
    waiting, a fifth of a small batch's time. This is what aiokafka's ``flush_for_commit`` does
    for a transaction (close the open batches, wake the sender), without its waiting: the
    caller awaits its own records' futures. A record added afterwards starts a new batch.
    (aiokafka 0.14: ``AIOKafkaProducer._message_accumulator``, ``MessageBatch._builder``.)
    """
    acc = getattr(aiokafka_producer(producer), "_message_accumulator", None)
    batches, waiter = getattr(acc, "_batches", None), getattr(acc, "_waiter_future", None)
    if batches is None or waiter is None:
        return False
    for queue in batches.values():
        for batch in queue:
            batch._builder.close()  # noqa: SLF001 - a closed batch no longer lingers
    if not waiter.done():
        waiter.set_result(None)  # wakes the sender, which drains closed batches at once
    return True


def check() -> None:
    """Raise if this Faust version no longer has the private method this module relies on."""
    from faust.streams import Stream

    method: Any = getattr(Stream, "_set_current_event", None)
    if not callable(method):
        raise RuntimeError(
            f"faust-streaming {faust.__version__} has no Stream._set_current_event: "
            "streams/worker/faust_compat.py needs a new way to route table writes per event"
        )


def fix_fetcher_close() -> None:
    """Make aiokafka's ``Fetcher.close`` survive its own cancelled fetch requests.

    aiokafka 0.14's ``Fetcher.close`` cancels each pending fetch request and then awaits it,
    which raises ``CancelledError`` out of ``close``: while the broker is unreachable there is
    always one pending (sleeping in its retry back-off). The error escapes Faust's consumer
    thread before it signals that it has shut down, so the worker sat out mode's 60 s
    ``shutdown_timeout`` on every SIGTERM sent while the broker was down. Idempotent; applied by
    :func:`streams.worker.app.build_app`, never at import.
    """
    import asyncio
    import contextlib

    from aiokafka.consumer.fetcher import Fetcher

    if getattr(Fetcher.close, "_crowdsafe_fixed", False):
        return
    original = Fetcher.close

    async def close(self) -> None:
        pending = getattr(self, "_pending_tasks", None)
        if pending is None or not hasattr(self, "_fetch_task"):
            await original(self)  # another aiokafka layout: leave it as it is
            return
        self._closed = True
        self._fetch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._fetch_task
        for waiter in self._fetch_waiters:
            self._notify(waiter)
        for task in list(pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    close._crowdsafe_fixed = True  # type: ignore[attr-defined]
    Fetcher.close = close  # type: ignore[method-assign]


def fix_recovery_seek_order() -> None:
    """Make Faust seek a rebalance's stream partitions to their committed offsets *before* it
    fetches from them again, so no message is lost at a failover.

    faust-streaming 0.15's ``Recovery.on_recovery_completed`` resumes the stream partitions,
    then awaits the seek to the committed offsets (a broker round trip), then resumes the flow,
    which clears the channel queues. Records fetched in that window are processed (the agent
    may run a batch), then the seek rewinds the consumer's read offset, the records still in the
    queue are cleared, and those the fetcher had already handed over (later offsets) move the
    read offset past them: the re-fetch from the committed offset drops them as already read.
    Seen here: a survivor taking over a SIGKILLed worker's partition lost 2 consecutive
    readings messages at the boundary of its first two batches (about 1 failover in 5; the
    same race as faust-streaming #216 and #253). Deferring the resume of the partitions until
    the seek is done means nothing is fetched from them before it. Idempotent; applied by
    :func:`streams.worker.app.build_app`, never at import.
    """
    from faust.tables.recovery import Recovery

    if getattr(Recovery.on_recovery_completed, "_crowdsafe_fixed", False):
        return
    Recovery.on_recovery_completed = seek_before_resume(Recovery.on_recovery_completed)


def seek_before_resume(original: Any) -> Any:
    """Wrap a recovery-completed coroutine method so that the partitions it resumes on the
    consumer are resumed only once its ``perform_seek`` has returned (or when it ends)."""

    @functools.wraps(original)
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        resume, seek = consumer.resume_partitions, consumer.perform_seek
        deferred: list = []
        resumed: set = set()

        def release() -> None:
            consumer.__dict__.pop("resume_partitions", None)
            consumer.__dict__.pop("perform_seek", None)
            while deferred:
                tps = deferred.pop(0)
                resumed.update(tps)
                resume(tps)

        async def seek_then_resume() -> None:
            await seek()
            await seek_uncommitted(consumer, {tp for tps in deferred for tp in tps})
            release()

        consumer.resume_partitions = deferred.append
        consumer.perform_seek = seek_then_resume
        try:
            await original(self, generation_id)
        finally:
            release()  # no seek (an empty assignment, a new rebalance): as Faust would have
        if resumed and self.app.consumer_generation_id == generation_id:
            await rewind(consumer, resumed)

    on_recovery_completed._crowdsafe_fixed = True  # type: ignore[attr-defined]
    return on_recovery_completed


async def seek_uncommitted(consumer: Any, tps: set) -> dict:
    """Seek the stream partitions among ``tps`` that have no committed offset to their first
    offset (what ``auto_offset_reset="earliest"`` means); the offsets sought.

    Faust's seek to the committed offsets skips such a partition (aiokafka's
    ``seek_to_committed`` seeks only where an offset was committed), but its records were
    already fetched during the recovery and dropped (the partition was paused), so its read
    offset has moved past them: a worker restarted before its first commit (2.8 s after its
    start) lost them for good, and the older readings of its zones then counted as duplicates
    of the newer ones it went on with. Seen here: 394 and 480 zone states lost in 2 of 33
    SIGKILL runs (tests/faults). The offsets sought are kept for :func:`committed_offset`, so
    the agent's offset guard (streams/worker/offsets.py) and :func:`rewind` know where these
    partitions start.
    """
    if consumer.app.conf.consumer_auto_offset_reset != "earliest":
        return {}  # "latest": where the reset put it is all that is known
    committed = getattr(consumer, "_committed_offset", {})  # noqa: SLF001 - module docstring
    missing = [tp for tp in tps if committed.get(tp) is None]
    if not missing:
        return {}
    first = dict(await consumer.earliest_offsets(*missing))
    await consumer.seek_wait(first)
    log.info("no committed offset: read from the first offset of %s", sorted(map(str, first)))
    vars(consumer).setdefault(_STARTED_AT, {}).update(first)
    return first


async def rewind(consumer: Any, tps: set) -> dict:
    """Seek ``tps`` back to where they must be read from (:func:`committed_offset`), once the
    recovery has ended; the offsets sought.

    Faust ends a recovery by resuming its flow control, which clears the streams' queues; the
    partitions were resumed just before (after their seek), so records fetched in between were
    handed to a queue and cleared, while the consumer's position had moved past them. Seen
    here: a worker restarted from an empty state folder applied 0 of the 49 readings waiting for
    it, for minutes (1 in ~10 runs of tests/commands/test_bench_zones_kafka.py, debug log: the
    records at the committed offsets fetched 6 ms before "Worker ready", then fetches from the
    end only). A record that did reach the agent comes again and is dropped by its ``seq``.
    """
    starts = {tp: committed_offset(consumer, tp) for tp in tps}
    offsets = {tp: offset for tp, offset in starts.items() if offset is not None}
    for tp, offset in offsets.items():
        await consumer.seek(tp, offset)
    return offsets
