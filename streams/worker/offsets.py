"""Every message of an input partition handled, none skipped: the agent's guard against a
consumer that moves past offsets it never delivered.

Faust can do that at a rebalance: records fetched while it seeks the partitions it was just
given are cleared from its queues when it resumes the flow, and its read offset has already
moved past them (streams/worker/faust_compat.py narrows that window; this closes it). Such
messages are never acked, so the committed offset stops below them and a restart would read
them again, but a live worker would never publish their zone states. The guard notices the
jump in offsets, skips the messages after it (they are acked unprocessed and come again) and
asks the consumer to seek back to the first one missing. A gap that is still there after
``settle_s`` is real (records a transactional producer aborted, or that retention deleted): it is
accepted, logged and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class OffsetGuard:
    """Per partition, the next offset expected; the partitions being sought back.

    >>> from types import SimpleNamespace as NS
    >>> ev = lambda off: NS(message=NS(tp=("readings", 0), offset=off))
    >>> guard = OffsetGuard()
    >>> keep, seek = guard.admit([ev(5), ev(6), ev(9), ev(10)], now=0.0)
    >>> [e.message.offset for e in keep], seek
    ([5, 6], {('readings', 0): 7})
    >>> keep, seek = guard.admit([ev(11), ev(7), ev(8), ev(9)], now=1.0)  # 11: fetched before
    >>> [e.message.offset for e in keep], seek
    ([7, 8, 9], {})
    >>> guard.forget()   # a rebalance; the partition comes back committed at 12
    >>> guard.admit([ev(14)], now=2.0, committed=lambda tp: 12)[1]
    {('readings', 0): 12}
    """

    settle_s: float = 5.0
    _next: dict[Any, int] = field(default_factory=dict)
    _seeking: dict[Any, tuple[int, float]] = field(default_factory=dict)
    gaps_sought: int = 0  # times a gap was sought back (it came)
    gaps_accepted: int = 0  # times a gap was real

    def admit(
        self,
        events: Iterable,
        now: float | None = None,
        committed: Callable[[Any], int | None] = lambda tp: None,
    ) -> tuple[list, dict[Any, int]]:
        """The events to handle, in order; and the partitions to seek back (to which offset).
        ``committed``: the partition's committed offset, where a partition new to this worker
        (assigned by a rebalance) must start."""
        now = time.monotonic() if now is None else now
        keep, seeks = [], {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            sought = self._seeking.get(tp)
            if sought is not None:
                target, deadline = sought
                if offset > target and now < deadline:
                    continue  # fetched before the seek took effect: it comes again
                del self._seeking[tp]
                if offset > target:
                    self.gaps_accepted += 1  # still missing after the seek: real
                else:
                    self.gaps_sought += 1
                self._next[tp] = offset + 1
                keep.append(event)
                continue
            expected = self._next.get(tp)
            if expected is None:
                expected = committed(tp)
            if expected is not None and offset > expected:
                self._seeking[tp] = (expected, now + self.settle_s)
                seeks[tp] = expected
                continue
            # In order, or a re-delivery after a rewind (handled again; seq drops duplicates).
            self._next[tp] = max(expected or 0, offset + 1)
            keep.append(event)
        return keep, seeks

    def forget(self, partitions: Iterable | None = None) -> None:
        """Drop what is known of ``partitions`` (all: None), e.g. when they are revoked."""
        if partitions is None:
            self._next.clear()
            self._seeking.clear()
            return
        for tp in partitions:
            self._next.pop(tp, None)
            self._seeking.pop(tp, None)
