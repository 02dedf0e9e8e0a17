"""Occupancy sensors (Wi-Fi, radar): a count of devices or blobs, times ``scale`` people each."""

from __future__ import annotations

from typing import Any

from streams.config.site import Source
from streams.sources.base import SimStep, SourceKind


class Sensor(SourceKind):
    name = "sensor"
    every_ticks = 6  # sensors report less often than cameras and gates (30 s at 5 s ticks)

    def simulate(self, source: Source, zone_id: str, step: SimStep) -> dict[str, Any]:
        count = step.rng.normal(step.now / source.scale, 0.05 * step.now + 1.0)
        return {"count": max(int(round(count)), 0)}
