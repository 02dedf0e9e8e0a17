"""Made ``state-v1-sample.json`` with the code of the commit that added both files (v1 state:
the zone's JSON dict in the Faust table). Kept in history only: later code has no v1 writer.

49 h of the normal scenario warm the anomaly detector of three zones (main-square: three
cameras; entrance-east: gate + camera; metro-interchange: gate + camera), then the surge
scenario runs until entrance-east has an open density episode. Stored: the exact bytes Faust's
JSON codec wrote for each zone, the next minute of readings, and what the v1 code published for
them (zone states and alerts), so the new code can be checked to continue identically.

Run from the repository root: PYTHONPATH=. python tests/zone/data/make_state_v1_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

from faust.serializers import codecs

from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.payloads import Reading
from streams.zone.processor import ZoneProcessor

ROOT = Path(__file__).resolve().parents[3]
ZONES = ("main-square", "entrance-east", "metro-interchange")
T0 = 1_764_036_000_000  # 10:00 in Guangzhou
WARM_H = 49


def main() -> None:
    site = load_site(ROOT / "deploy" / "sites" / "guangzhou-station.toml")
    p, states = ZoneProcessor(site), {}
    arrived = 1_700_000_000_000

    def feed(readings: list[dict]) -> dict[str, object]:
        outs = {}
        for zone in ZONES:
            rs = [Reading.model_validate(r) for r in readings if r["zone_id"] == zone]
            if rs:
                outs[zone] = p.apply(zone, states.get(zone), rs, arrived)
                states[zone] = outs[zone].state
        return outs

    start = T0 - WARM_H * 3_600_000
    for ts, readings in Simulator(site, "normal", start_ms=start, seed=3).ticks():
        if ts >= T0:
            break
        feed(readings)
    ticks = Simulator(site, "surge", start_ms=T0, seed=4).ticks()
    for _, readings in ticks:
        feed(readings)
        if states["entrance-east"]["episodes"].get("density", {}).get("severity"):
            break
    stored = {z: codecs.dumps("json", states[z]).decode() for z in ZONES}
    following, published = [], []
    for _, (_, readings) in zip(range(12), ticks, strict=False):
        readings = [r for r in readings if r["zone_id"] in ZONES]
        following.append(readings)
        outs = feed(readings)
        published.append(
            {z: {"zone_states": o.zone_states, "alerts": o.alerts} for z, o in outs.items()}
        )
    sample = {
        "about": "v1 zone state (Faust table, JSON) and what v1 published next; "
        "made by make_state_v1_sample.py at the commit that added this file",
        "stored": stored,
        "next_readings": following,
        "published": published,
    }
    out = Path(__file__).with_name("state-v1-sample.json")
    out.write_text(json.dumps(sample, separators=(",", ":")) + "\n")
    print(out, out.stat().st_size, "bytes;", {z: len(s) for z, s in stored.items()})


if __name__ == "__main__":
    main()
