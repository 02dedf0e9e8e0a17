"""Realistic readings for every source of a site: a daily rhythm, train arrivals and scenarios.

Occupancy per zone follows the station's day (quiet nights, morning and evening peaks), with a
pulse after every train arrival in the zones passengers cross; each source then observes it the
way it would in the field (cameras a noisy share of the zone, sensors a scaled count, gates the
crossings). Scenarios overlay one event on that base:

* ``normal``: nothing happens; every zone stays below its warning density.
* ``surge``: one zone climbs past its critical density, holds, then recovers.
* ``blind-camera``: one camera loses its video for a while (outage readings, never zeros).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from streams.config.site import Site, Source, Zone
from streams.sources import KINDS as SOURCE_KINDS
from streams.sources.base import SimStep

TICK_S = 5.0  # cameras and gates report every 5 s of event time
TRAIN_EVERY_S = 600.0  # an arrival every 10 minutes
TRAIN_ZONES = {
    "metro-interchange",
    "metro-stairs",
    "east-plaza",
    "west-plaza",
    "entrance-east",
    "entrance-west",
    "underpass",
}
CALM_SHARE = 0.45  # base peak density as a share of the zone's warning density

SCENARIOS = ("normal", "surge", "blind-camera")


@dataclass(frozen=True)
class Surge:
    """Baseline until ``start_s``, a ramp to ``peak`` x critical, a hold, and a decay."""

    zone_id: str
    start_s: float = 120.0
    ramp_s: float = 480.0
    hold_s: float = 240.0
    decay_s: float = 360.0
    peak: float = 1.25

    @property
    def end_s(self) -> float:
        return self.start_s + self.ramp_s + self.hold_s + self.decay_s

    def weight(self, t: float) -> float:
        """0 outside the surge, rising to 1 at the hold, back to 0 after the decay."""
        if t < self.start_s or t >= self.end_s:
            return 0.0
        t -= self.start_s
        if t < self.ramp_s:
            return t / self.ramp_s
        t -= self.ramp_s
        if t < self.hold_s:
            return 1.0
        return 1.0 - (t - self.hold_s) / self.decay_s


@dataclass(frozen=True)
class Outage:
    source_id: str
    start_s: float = 120.0
    length_s: float = 300.0

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.start_s + self.length_s


def daily_rhythm(hour: float) -> float:
    """Share of the daily peak present at local ``hour``: quiet night, two commuter peaks.

    >>> daily_rhythm(3.0) < 0.15 < 0.8 < daily_rhythm(8.5)
    True
    """
    peaks = 0.85 * math.exp(-((hour - 8.5) ** 2) / 2.0) + math.exp(-((hour - 18.0) ** 2) / 3.0)
    day = 0.45 / (1 + math.exp(-(hour - 6.5) * 2)) / (1 + math.exp((hour - 22.5) * 2))
    return min(0.08 + day + peaks, 1.0)


def train_pulse(t: float) -> float:
    """Extra share of people after an arrival: +30 % decaying over ~3 minutes."""
    return 0.3 * math.exp(-(t % TRAIN_EVERY_S) / 180.0)


class Simulator:
    """Yields batches of reading dicts, one batch per tick of event time."""

    def __init__(
        self,
        site: Site,
        scenario: str = "normal",
        start_ms: int | None = None,
        seed: int = 7,
        surge_zone: str | None = None,
        blind_source: str | None = None,
        repeat: bool = False,
        compress: float = 1.0,
        story_start_ms: int | None = None,
    ) -> None:
        """``compress``: story seconds per event second. The story (daily rhythm, trains, the
        scenario's event) runs that much faster while event times advance with the clock, so a
        live demo stamps wall-clock times yet shows a surge every few minutes.
        ``story_start_ms``: the moment the story starts (its local hour sets the rhythm;
        default: ``start_ms``)."""
        if compress <= 0:
            raise ValueError(f"compress must be > 0, got {compress}")
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario '{scenario}' (choose from {', '.join(SCENARIOS)})")
        self.site, self.scenario = site, scenario
        self.start_ms = start_ms if start_ms is not None else int(datetime.now().timestamp() * 1000)
        self.compress = float(compress)
        self.story_start_ms = story_start_ms if story_start_ms is not None else self.start_ms
        self.rng = np.random.default_rng(seed)
        self.tz = ZoneInfo(site.site.timezone)
        self.surge = Surge(surge_zone or _default_surge_zone(site)) if scenario == "surge" else None
        if surge_zone and surge_zone not in site.zone_by_id:
            known = ", ".join(sorted(site.zone_by_id))
            raise ValueError(f"unknown zone '{surge_zone}' (site {site.site.id}: {known})")
        cameras = [s.id for s in site.sources if s.kind == "camera"]
        self.outage = (
            Outage(blind_source or cameras[0]) if scenario == "blind-camera" and cameras else None
        )
        self._occupancy: dict[str, float] = {}
        # seq from the wall clock, not event time: a simulator restarted with earlier (or
        # compressed) event times still sends seq above everything its sources sent before.
        self.seq_base = time.time_ns() // 1000
        # Repeat the scenario's story on one continuous clock (the demo runs for as long as
        # people watch); event times never go back, so sources' seq keep increasing.
        self.cycle_s = self.length_s if repeat else None

    @property
    def length_s(self) -> float | None:
        """Story-time length of the scenario (None: it goes on); event time takes
        ``length_s / compress``."""
        if self.surge:
            return self.surge.end_s + 120.0
        if self.outage:
            return self.outage.start_s + self.outage.length_s + 120.0
        return None

    def occupancy(self, zone: Zone, t: float) -> float:
        """Expected people in ``zone`` at ``t`` story seconds after the start (before noise)."""
        # A repeating story repeats its hours too: a demo stays at the hour it was started at.
        local = datetime.fromtimestamp(self.story_start_ms / 1000 + self._story_time(t), self.tz)
        hour = local.hour + local.minute / 60
        base_density = CALM_SHARE * self.site.thresholds(zone).warning
        share = daily_rhythm(hour) * (1 + (train_pulse(t) if zone.id in TRAIN_ZONES else 0))
        occ = base_density * min(share, 1.0) * zone.area_m2
        if self.surge and self.surge.zone_id == zone.id:
            target = self.surge.peak * self.site.thresholds(zone).critical * zone.area_m2
            occ += (target - occ) * self.surge.weight(self._story_time(t))
        return occ

    def _story_time(self, t: float) -> float:
        return t % self.cycle_s if self.cycle_s else t

    def ticks(self) -> Iterator[tuple[int, list[dict]]]:
        """(event time ms, readings) every ``TICK_S`` seconds of event time, forever."""
        n = 0
        while True:
            ts = self.start_ms + int(n * TICK_S * 1000)
            t = n * TICK_S * self.compress  # story time
            occ = {z.id: self.occupancy(z, t) for z in self.site.zones}
            readings = [
                r
                for source in self.site.sources
                if n % SOURCE_KINDS[source.kind].every_ticks == 0
                for r in self._observe(source, occ, t, ts)
            ]
            self._occupancy = occ
            yield ts, readings
            n += 1

    def _observe(self, source: Source, occ: dict[str, float], t: float, ts: int) -> list[dict]:
        seq = self.seq_base + (ts - self.start_ms) // int(TICK_S * 1000)  # one per tick
        base = {"source_id": source.id, "kind": source.kind, "ts": ts, "seq": seq,
                "simulated": True}  # fmt: skip
        if (
            self.outage
            and self.outage.source_id == source.id
            and self.outage.active(self._story_time(t))
        ):
            return [
                {**base, "zone_id": z, "status": "offline", "reason": "video signal lost"}
                for z in source.zones
            ]
        kind = SOURCE_KINDS[source.kind]
        return [
            {
                **base,
                "zone_id": z,
                **kind.simulate(
                    source, z, SimStep(occ[z], self._occupancy.get(z, occ[z]), self.rng, TICK_S)
                ),
            }
            for z in source.zones
        ]


def _default_surge_zone(site: Site) -> str:
    return "entrance-east" if "entrance-east" in site.zone_by_id else site.zones[0].id
