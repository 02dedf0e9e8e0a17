"""What every source kind provides: how its reading says something about the zone's occupancy
(a level, crossings, or both), and how the simulator makes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from streams.config.site import Source


class ReadingLike(Protocol):
    """The fields of a validated reading a source kind looks at."""

    zone_id: str
    count: int | None
    entered: int | None
    exited: int | None


@dataclass(frozen=True, slots=True)
class SimStep:
    """One simulator tick for one zone: it holds ``now`` people (``before`` a tick earlier)."""

    now: float
    before: float
    rng: np.random.Generator
    tick_s: float


class SourceKind:
    """One kind of source. The defaults read ``count`` as people seen now (times the source's
    ``scale``) and ``entered``/``exited`` as crossings since its previous reading."""

    name: ClassVar[str]
    every_ticks: ClassVar[int] = 1  # the simulator emits a reading every this many ticks
    reports_level: ClassVar[bool] = True  # its readings say how many are in view (not gates)

    def level(self, r: ReadingLike, source: Source | None) -> float | None:
        """The whole zone's occupancy this reading implies, or None if it reports no count.
        A source not in the site file is taken at face value."""
        if r.count is None:
            return None
        return float(r.count) if source is None else r.count * source.scale

    def flow(self, r: ReadingLike) -> tuple[int, int] | None:
        """``(entered, exited)`` since the source's previous reading, or None."""
        if r.entered is None and r.exited is None:
            return None
        return r.entered or 0, r.exited or 0

    def simulate(self, source: Source, zone_id: str, step: SimStep) -> dict[str, Any]:
        """The measurement fields of one simulated reading of ``zone_id`` at ``step``."""
        raise NotImplementedError
