"""Cameras: people counted in view over ``coverage`` (0-1) of the zone; the edge counter is in
``streams/edge/camera.py``."""

from __future__ import annotations

from typing import Any

from streams.config.site import Source
from streams.sources.base import ReadingLike, SimStep, SourceKind


class Camera(SourceKind):
    name = "camera"

    def level(self, r: ReadingLike, source: Source | None) -> float | None:
        """A camera sees ``count`` people over a fraction ``coverage`` of the zone.

        >>> from streams.config.site import Source
        >>> from types import SimpleNamespace as R
        >>> cam = Source(id="c", kind="camera", zones=["z"], coverage=0.5)
        >>> Camera().level(R(zone_id="z", count=40, entered=None, exited=None), cam)
        80.0
        """
        if r.count is None or source is None:
            return super().level(r, source)
        return r.count / source.coverage_of(r.zone_id)

    def simulate(self, source: Source, zone_id: str, step: SimStep) -> dict[str, Any]:
        seen = step.now * source.coverage_of(zone_id)
        count = step.rng.normal(seen, 0.03 * seen + 1.0)  # 3 % counting noise, plus one person
        return {"count": max(int(round(count)), 0)}
