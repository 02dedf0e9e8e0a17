"""Readings for every zone of any site, fast: one message per zone per tick, holding a reading of
each of the zone's sources (as an edge gateway batches them), keyed by zone id.

Not the simulator (``streams/edge/simulator.py``: a station's day, trains, scenarios, per
source): this is for scale, 100,000 zones a tick in a few seconds. Each zone has a steady
level, drawn once per zone from ``seed``: most well below their warning density, one in 200
above it (so a city always has a few alerts); each tick adds counting noise.

>>> from streams.config.synthetic import synthetic_site
>>> site = synthetic_site(3, seed=1)
>>> ticks = SyntheticReadings(site, seed=1)
>>> messages = ticks.tick(1_764_000_000_000)
>>> [key for key, _ in messages]
[b'z000000', b'z000001', b'z000002']
>>> ticks.readings_per_tick == sum(len(site.sources_by_zone[z.id]) for z in site.zones)
True
"""

from __future__ import annotations

import json
import random

from streams.config.site import Site

ALERTING_SHARE = 0.005  # zones above their warning density


class SyntheticReadings:
    """Ticks of readings for every zone of ``site`` (deterministic by ``seed``)."""

    def __init__(self, site: Site, seed: int = 0) -> None:
        self.site = site
        self.rng = random.Random(seed)
        self.seq = 0
        self.level: dict[str, float] = {}  # people in each zone
        for zone in site.zones:
            share = (
                self.rng.uniform(1.05, 1.3)
                if self.rng.random() < ALERTING_SHARE
                else self.rng.uniform(0.05, 0.6)
            )
            self.level[zone.id] = share * site.thresholds(zone).warning * zone.area_m2
        self.readings_per_tick = sum(len(s) for s in site.sources_by_zone.values())

    def tick(self, ts_ms: int) -> list[tuple[bytes, bytes]]:
        """(key, value) of one message per zone (its sources' readings at ``ts_ms``)."""
        self.seq += 1
        rng, out = self.rng, []
        for zone_id, sources in self.site.sources_by_zone.items():
            if not sources:
                continue
            people = max(0.0, self.level[zone_id] * rng.uniform(0.95, 1.05))
            readings = []
            for s in sources:
                r = {"source_id": s.id, "kind": s.kind, "zone_id": zone_id, "ts": ts_ms,
                     "seq": self.seq, "simulated": True}  # fmt: skip
                if s.kind == "camera":
                    r["count"] = round(people * s.coverage_of(zone_id))
                elif s.kind == "sensor":
                    r["count"] = round(people / s.scale)
                else:
                    r["entered"], r["exited"] = rng.randint(0, 20), rng.randint(0, 20)
                readings.append(r)
            value = json.dumps({"v": 1, "readings": readings}, separators=(",", ":")).encode()
            out.append((zone_id.encode(), value))
        return out
