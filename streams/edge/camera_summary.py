"""What ``crowdsafe camera`` tells while it works on a recording and when it ends: progress
over the frames to count, then one line with the frames counted, how fast, and the people
counted per zone (mean and maximum per frame)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.edge.capture import Frame, FrameSource, Outage, counted
from streams.ops.progress import Progress


@dataclass
class _Zone:
    total: int = 0
    n: int = 0
    peak: int = 0


@dataclass
class CountTally:
    """People per zone over the readings that carry a count (offline or warming-up ones do not).

    >>> t = CountTally()
    >>> for n in (4, 6, 8):
    ...     t.add({"zone_id": "square", "count": n})
    >>> t.add({"zone_id": "square", "status": "offline", "reason": "stream dropped"})
    >>> t.text()
    'square mean 6.0, max 8 people'
    >>> CountTally().text()
    'no counts'
    """

    zones: dict[str, _Zone] = field(default_factory=dict)

    def add(self, reading: dict[str, Any]) -> None:
        count = reading.get("count")
        if not isinstance(count, int):
            return
        z = self.zones.setdefault(reading["zone_id"], _Zone())
        z.total, z.n, z.peak = z.total + count, z.n + 1, max(z.peak, count)

    def text(self) -> str:
        if not self.zones:
            return "no counts"
        return "; ".join(
            f"{zone} mean {z.total / z.n:.1f}, max {z.peak} people"
            for zone, z in self.zones.items()
        )


def frames_to_count(source: FrameSource, every: int) -> int:
    """Frames the camera will count in a recording (0: a live source, or a file that does
    not say how many frames it holds), so that progress can show a share of them."""
    total = source.total_frames()
    return math.ceil(total / every) if total else 0  # how many of range(total) counted() takes


def with_progress(
    items: Iterable[Frame | Outage], every: int, progress: Progress
) -> Iterator[Frame | Outage]:
    """``items`` unchanged; a step once each frame to count has been handed on and processed."""
    for item in items:
        yield item
        if isinstance(item, Frame) and counted(item.index, every):
            progress.step()


def summary(camera_id: str, frames: int, seconds: float, readings: str, tally: CountTally) -> str:
    """The last line of a run.

    >>> t = CountTally()
    >>> t.add({"zone_id": "pets", "count": 5})
    >>> summary("cam-1", 150, 30.0, "150 readings written to c.csv", t)
    'camera cam-1: 150 frames counted, 150 readings written to c.csv; 30.0 s, 5.0 frames/s; pets mean 5.0, max 5 people'
    >>> summary("cam-1", 0, 0.1, "2 readings sent (cannot open rtsp://***@cam/1)", t)
    'camera cam-1: 0 frames counted, 2 readings sent (cannot open rtsp://***@cam/1)'
    """
    if frames == 0:  # nothing to measure: the line ends with why (in ``readings``)
        return f"camera {camera_id}: 0 frames counted, {readings}"
    rate = frames / seconds if seconds > 0 else 0.0
    return (
        f"camera {camera_id}: {frames} frames counted, {readings}; "
        f"{seconds:.1f} s, {rate:.1f} frames/s; {tally.text()}"
    )
