"""``crowdsafe simulate``: publish realistic readings for every zone of a site to Kafka."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from streams.edge.simulator import SCENARIOS, TICK_S, Simulator


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="publish simulated camera, gate and sensor readings")
    p.add_argument("--site", type=Path, help="site file (default: CROWDSAFE_SITE)")
    p.add_argument("--scenario", choices=SCENARIOS, default="normal")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="event seconds per wall second (0: as fast as possible)",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="event-time seconds to simulate (default: the scenario's length, forever for normal)",
    )
    p.add_argument("--zone", help="zone that surges (surge scenario)")
    p.add_argument("--source", help="camera that goes blind (blind-camera scenario)")
    p.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="event time of the first reading, ISO 8601 (default: now)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--repeat",
        action="store_true",
        help="replay the scenario's story forever on one continuous clock",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.config.settings import get_settings
    from streams.config.site import load_site
    from streams.edge.producer import ReadingProducer

    if args.speed < 0:
        raise SystemExit("crowdsafe simulate: --speed must be >= 0")
    site = load_site(args.site or get_settings().site)
    start_ms = int(args.start.timestamp() * 1000) if args.start else None
    sim = Simulator(site, args.scenario, start_ms, args.seed, args.zone, args.source, args.repeat)
    duration = args.duration if args.duration is not None or args.repeat else sim.length_s
    wall_start = time.monotonic()
    sent = 0
    with ReadingProducer() as producer:
        for ts, readings in sim.ticks():
            elapsed = (ts - sim.start_ms) / 1000
            if duration is not None and elapsed > duration:
                break
            if args.speed > 0:
                time.sleep(max(0.0, wall_start + elapsed / args.speed - time.monotonic()))
            by_zone: dict[str, list[dict]] = {}
            for reading in readings:
                by_zone.setdefault(reading["zone_id"], []).append(reading)
            for batch in by_zone.values():  # one message per zone per tick
                producer.send_batch(batch)
            sent += len(readings)
            if not args.quiet and int(elapsed) % 60 == 0:
                producer.flush()
                print(
                    f"simulate: {args.scenario} t+{elapsed / 60:.0f} min, {sent} readings sent",
                    flush=True,
                )
    print(
        f"simulate: done, {sent} readings over {elapsed:.0f} s of event time (tick {TICK_S:.0f} s)",
        flush=True,
    )
    return 0
