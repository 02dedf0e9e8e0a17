"""Gates (fare gates, entrance counters): crossings ``entered``/``exited`` since the previous
reading, integrated into a running occupancy (:func:`detectors.density.integrate_gates`)."""

from __future__ import annotations

from typing import Any

from streams.config.site import Source
from streams.sources.base import SimStep, SourceKind

DWELL_S = 120.0  # simulated people stay about two minutes, so this many pass through


class Gate(SourceKind):
    name = "gate"
    reports_level = False  # crossings: judged by the source-fault kind only as the others

    def simulate(self, source: Source, zone_id: str, step: SimStep) -> dict[str, Any]:
        net = step.now - step.before
        through = step.rng.poisson(max(step.now, 1.0) * step.tick_s / DWELL_S)
        return {
            "entered": int(through + max(int(round(net)), 0)),
            "exited": int(through + max(int(round(-net)), 0)),
        }
