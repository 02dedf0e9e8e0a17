"""Sources that fail while still reporting: a level source *stuck* at one value, or one
*disagreeing* persistently with the other level sources of its zone.

Silent sources are caught elsewhere (stale / offline). These two faults are worse because the
source keeps looking healthy: a camera whose feed froze repeats its last frame, so the zone looks
steady while it empties or fills; a camera knocked askew, or a sensor with a wrong scale, reads a
steady multiple of the truth. Both are judged from a few numbers per source, updated in O(1) per
reading (plus the zone's few other sources), in event time, so replays judge like live streams.

*Stuck* (a flat-line test; "persistence check", Zahumenský 2004, WMO AWS quality control): the
source's level has not changed at all for longer than ``stuck_after_s``. Counting noise makes a
working counter wobble by a person or more from frame to frame, so an exactly repeated value is
the sign of a repeated frame. Only an empty zone legitimately reads the same (zero) for a long
time, so a held value below ``stuck_min_people`` (the zone estimate) is flagged only when the
zone's other sources moved meanwhile: the other level sources' estimate changed by
``move_people`` (and a quarter), or the gates counted a net ``move_people`` in or out. A quiet
night where every source reads 0 is never flagged.

*Disagreeing* (an EWMA control chart, Roberts 1959): the log-ratio of the source's estimate to
the other fresh level sources' fused estimate, smoothed by an exponentially weighted mean over
event time (half-life ``half_life_s``, so irregular intervals weigh by the time they cover), is
beyond ``ln(disagree_factor)`` for ``min_duration_s``. Ratios, not differences: counting error
grows with the count, so a factor means the same thing in a 600 m² checkpoint and on a
32,000 m² square. ``floor_people`` is added to both sides: below a few people, counting noise
and people on one side of a zone dominate and ratios mean nothing (0 vs 2 is not "infinitely
different"). The others are fused in log space (a weighted geometric mean), so one wild source
moves its neighbours' comparison less than a plain mean would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HealthSettings:
    stuck_after_s: float = 600.0
    stuck_min_people: float = 5.0
    move_people: float = 10.0
    disagree_factor: float = 2.0
    half_life_s: float = 120.0
    min_duration_s: float = 300.0
    floor_people: float = 10.0


def fuse_log(levels: Iterable[tuple[float, float]], floor: float) -> float | None:
    """Weighted geometric mean of ``(estimate, weight)`` pairs, each shifted by ``floor``
    (and shifted back); ``None`` when there is nothing to fuse.

    >>> round(fuse_log([(90, 1.0), (390, 1.0)], floor=10), 1)
    190.0
    >>> fuse_log([], floor=10) is None
    True
    """
    total = s = 0.0
    for estimate, weight in levels:
        total += weight
        s += weight * math.log(estimate + floor)
    return None if total <= 0 else math.exp(s / total) - floor


def log_ratio(estimate: float, others: float, floor: float) -> float:
    """How far ``estimate`` is from ``others``, as a log-ratio with ``floor`` people added.

    >>> round(log_ratio(290, 90, floor=10), 3) == round(math.log(3), 3)
    True
    >>> round(log_ratio(2, 0, floor=10), 2)   # a couple of people: no real disagreement
    0.18
    """
    return math.log((estimate + floor) / (others + floor))


def ewma(mean: float | None, mean_ts: int | None, x: float, ts: int, half_life_s: float) -> float:
    """Exponentially weighted mean over event time (ms): a sample weighs by the time since the
    previous one, so 5-second and minute-by-minute sources forget alike. It starts at 0 (the
    target, agreement, as Roberts' chart starts at the target mean) with the first sample only
    setting the clock, so one wild first comparison cannot look persistent.

    >>> ewma(None, None, 1.0, 0, half_life_s=60)
    0.0
    >>> ewma(0.0, 0, 1.0, 60_000, half_life_s=60)   # one half-life later: half way
    0.5
    """
    if mean is None or mean_ts is None:
        return 0.0
    dt_s = max(ts - mean_ts, 0) / 1000
    alpha = 1.0 - 0.5 ** (dt_s / half_life_s)
    return mean + alpha * (x - mean)


def beyond_since(since: int | None, mean: float, ts: int, factor: float) -> int | None:
    """When the smoothed log-ratio went beyond ``ln(factor)`` either way (kept while it stays
    there), else ``None``.

    >>> beyond_since(None, math.log(3), 5, factor=2.0), beyond_since(5, math.log(3), 9, 2.0)
    (5, 5)
    >>> beyond_since(5, 0.1, 9, factor=2.0) is None
    True
    """
    if abs(mean) <= math.log(factor):
        return None
    return ts if since is None else since


def others_moved(
    ref_level: float | None,
    level: float | None,
    ref_net: float,
    net: float,
    move_people: float,
) -> bool:
    """Did the zone's other sources move since a hold began? Their fused level by
    ``move_people`` and a quarter, or the gates' net count by ``move_people``.

    >>> others_moved(0.0, 40.0, 0, 0, move_people=10)      # the others saw people arrive
    True
    >>> others_moved(100.0, 112.0, 0, 0, move_people=10)   # noise and small drift
    False
    >>> others_moved(None, None, 3, 30, move_people=10)    # the gate counted 27 more in
    True
    """
    if ref_level is not None and level is not None:
        change = abs(level - ref_level)
        if change >= max(move_people, 0.25 * max(level, ref_level)):
            return True
    return abs(net - ref_net) >= move_people


def is_stuck(held_since: int | None, value: float, ts: int, moved: bool, s: HealthSettings) -> bool:
    """A level held since ``held_since`` (ms) is stuck at ``ts`` when held longer than
    ``stuck_after_s`` and either non-trivial (``stuck_min_people`` or more) or the others
    ``moved`` meanwhile.

    >>> s = HealthSettings(stuck_after_s=600)
    >>> is_stuck(0, 120.0, 601_000, moved=False, s=s)    # a frozen frame of a busy zone
    True
    >>> is_stuck(0, 0.0, 3_600_000, moved=False, s=s)    # an empty zone at night
    False
    >>> is_stuck(0, 0.0, 601_000, moved=True, s=s)       # zero while the gates count arrivals
    True
    >>> is_stuck(0, 120.0, 599_000, moved=True, s=s)
    False
    """
    if held_since is None or ts - held_since <= s.stuck_after_s * 1000:
        return False
    return value >= s.stuck_min_people or moved


def worst_only(deviation: dict[str, float], n_levels: int) -> set[str]:
    """Which of the sources beyond the factor (``id -> |smoothed log-ratio|``, every one beyond
    it now, held long enough or not) may be blamed. One wild source also pulls every other
    source's comparison its way (by ``1/(n-1)`` of its own, in log space, more when it weighs
    more), so with three or more level sources only the worst is; with two, nobody can tell
    which one is wrong: both are.

    >>> sorted(worst_only({"cam-n": 1.1, "cam-s": 0.71}, n_levels=3))
    ['cam-n']
    >>> sorted(worst_only({"cam-a": 1.1, "cam-b": 1.1}, n_levels=2))
    ['cam-a', 'cam-b']
    """
    if n_levels < 3 or len(deviation) < 2:
        return set(deviation)
    return {max(deviation, key=deviation.__getitem__)}
