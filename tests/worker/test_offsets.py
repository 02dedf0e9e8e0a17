"""The agent's offset guard: a skipped offset is sought back, a real gap accepted in time."""

from types import SimpleNamespace as NS

from streams.worker.offsets import OffsetGuard

TP = ("t.readings", 1)


def ev(offset: int, tp=TP):
    return NS(message=NS(tp=tp, offset=offset))


def offsets(events) -> list[int]:
    return [e.message.offset for e in events]


def test_in_order_and_rewound_messages_pass_and_other_partitions_are_independent():
    guard = OffsetGuard()
    keep, seek = guard.admit(
        [ev(3), ev(4), ev(5), ev(0, ("t.readings", 0)), ev(1, ("t.readings", 0))]
    )
    assert (offsets(keep), seek) == ([3, 4, 5, 0, 1], {})
    keep, seek = guard.admit([ev(4), ev(5), ev(6)])  # a rebalance rewound to the committed 4
    assert (offsets(keep), seek) == ([4, 5, 6], {})


def test_a_skipped_offset_is_sought_back_and_the_messages_after_it_wait():
    guard = OffsetGuard(settle_s=5)
    keep, seek = guard.admit([ev(10), ev(11), ev(14), ev(15)], now=0)
    assert (offsets(keep), seek) == ([10, 11], {TP: 12})
    keep, seek = guard.admit([ev(16), ev(17)], now=0.5)  # still fetched before the seek
    assert (offsets(keep), seek) == ([], {})
    keep, seek = guard.admit([ev(12), ev(13), ev(14), ev(15), ev(16)], now=1)
    assert (offsets(keep), seek) == ([12, 13, 14, 15, 16], {})
    assert (guard.gaps_sought, guard.gaps_accepted) == (1, 0)


def test_a_gap_still_there_after_the_settle_time_is_real():
    guard = OffsetGuard(settle_s=5)
    guard.admit([ev(1)], now=0)
    assert guard.admit([ev(5)], now=0)[1] == {TP: 2}
    assert offsets(guard.admit([ev(5)], now=6)[0]) == [5]  # aborted or deleted records
    assert (guard.gaps_sought, guard.gaps_accepted) == (0, 1)
    assert offsets(guard.admit([ev(6)], now=7)[0]) == [6]


def test_a_partition_given_by_a_rebalance_starts_at_its_committed_offset():
    guard = OffsetGuard()
    guard.admit([ev(100)], now=0)
    guard.forget([TP])  # revoked
    keep, seek = guard.admit([ev(230)], now=1, committed=lambda tp: 101)  # came back, ahead
    assert (offsets(keep), seek) == ([], {TP: 101})
    keep, seek = guard.admit([ev(101), ev(102)], now=2, committed=lambda tp: 101)
    assert offsets(keep) == [101, 102]
    fresh = OffsetGuard()  # never committed: the first message is the start
    assert offsets(fresh.admit([ev(7)], now=0, committed=lambda tp: None)[0]) == [7]
