"""Zone occupancy fused from several sources, and density from occupancy.

The fusion rule (documented in README, "How sources combine"):

* *level* sources report how many people are in view now: a camera sees ``count`` people over a
  fraction ``coverage`` of the zone, so it estimates ``count / coverage`` for the whole zone; a
  sensor (e.g. a Wi-Fi or radar occupancy counter) estimates ``count * scale``.
  The zone's level estimate is the weight-averaged estimate of its *fresh* level sources.
* *gate* sources report crossings (``entered``/``exited``) since their previous message. Their net
  flow is integrated into a running occupancy that is re-anchored to the level estimate whenever
  one exists, so gates carry the zone between camera frames and alone when no level source is
  fresh; the integral never goes below zero.
* a source is *stale* when its last reading is older than ``stale_after_s`` of event time
  behind the newest reading of the zone, or when it reported an outage; stale sources are left
  out, and listed, never read as zero.
"""

from __future__ import annotations

from dataclasses import dataclass


def density(occupancy: float, area_m2: float) -> float:
    """Persons per m².

    >>> density(1200, 800.0)
    1.5
    """
    if area_m2 <= 0:
        raise ValueError(f"area must be > 0 m², got {area_m2}")
    return max(occupancy, 0.0) / area_m2


@dataclass(frozen=True, slots=True)
class LevelEstimate:
    """One fresh level source's estimate of the whole zone's occupancy."""

    source_id: str
    occupancy: float
    weight: float = 1.0


def fuse_levels(estimates: list[LevelEstimate]) -> float | None:
    """Weight-averaged zone occupancy of the fresh level sources; ``None`` when there is none.

    >>> fuse_levels([LevelEstimate("cam-1", 100), LevelEstimate("cam-2", 140, 3.0)])
    130.0
    >>> fuse_levels([]) is None
    True
    """
    total = sum(e.weight for e in estimates)
    if not estimates or total <= 0:
        return None
    return sum(e.occupancy * e.weight for e in estimates) / total


def integrate_gates(occupancy: float, entered: int, exited: int) -> float:
    """Carry occupancy across net gate flow, never below zero.

    >>> integrate_gates(10, entered=5, exited=20)
    0.0
    """
    return max(occupancy + entered - exited, 0.0)
