"""Occupancy sensors (Wi-Fi, radar): a count of devices or blobs, times ``scale`` people each."""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.config.site import Source
from streams.sources.base import SourceKind


class Sensor(SourceKind):
    name = "sensor"
    every_ticks = 6  # sensors report less often than cameras and gates (30 s at 5 s ticks)

    def simulate(
        self,
        source: Source,
        zone_id: str,
        now: float,
        before: float,
        rng: np.random.Generator,
        tick_s: float,
    ) -> dict[str, Any]:
        count = rng.normal(now / source.scale, 0.05 * now + 1.0)
        return {"count": max(int(round(count)), 0)}
