"""``crowdsafe simulate``: publish realistic readings for every zone of a site to Kafka."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

from streams.edge.simulator import SCENARIOS, TICK_S, Simulator


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="publish simulated camera, gate and sensor readings")
    p.add_argument("--site", type=Path, help="site file (default: CROWDSAFE_SITE)")
    p.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="normal",
        help="normal day, a surge in one zone, or a camera going blind (default: normal)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="how many times faster the scenario's story runs, while readings are stamped with "
        "the wall clock and sent every 5 s (0: as fast as possible, stamped from --start on, "
        "the story not compressed: for history and tests)",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="story seconds to simulate (default: the scenario's length, forever for normal)",
    )
    p.add_argument(
        "--clock",
        type=_local_time,
        metavar="HH:MM",
        help="the site's local time of day the story starts at (default: the time of the first "
        "reading), e.g. 17:30 for the station's evening peak",
    )
    p.add_argument("--zone", help="zone that surges (surge scenario)")
    p.add_argument("--source", help="camera that goes blind (blind-camera scenario)")
    p.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="event time of the first reading, ISO 8601 (default: now)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed of the noise (default: 7)")
    p.add_argument(
        "--repeat",
        action="store_true",
        help="replay the scenario's story forever on one continuous clock",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.config.settings import get_settings
    from streams.config.site import load_site
    from streams.edge.producer import ReadingProducer

    if args.speed < 0:
        raise SystemExit("crowdsafe simulate: --speed must be >= 0")
    site = load_site(args.site or get_settings().site)
    start_ms = int(args.start.timestamp() * 1000) if args.start else int(time.time() * 1000)
    story_start_ms = _story_start(start_ms, args.clock, site.site.timezone)
    try:
        sim = Simulator(
            site, args.scenario, start_ms, args.seed, args.zone, args.source, args.repeat,
            compress=args.speed or 1.0, story_start_ms=story_start_ms,
        )  # fmt: skip
    except ValueError as exc:  # an unknown zone or source: one line, not a traceback
        raise SystemExit(f"crowdsafe simulate: {exc}") from exc
    duration = args.duration if args.duration is not None or args.repeat else sim.length_s
    wall_start = time.monotonic()
    sent = 0
    with ReadingProducer() as producer:
        for ts, readings in sim.ticks():
            wall = (ts - sim.start_ms) / 1000  # event seconds: wall seconds when live
            elapsed = wall * sim.compress  # story seconds
            if duration is not None and elapsed > duration:
                break
            if args.speed > 0:  # live: readings go out when their event time comes
                time.sleep(max(0.0, wall_start + wall - time.monotonic()))
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
        f"simulate: done, {sent} readings over {elapsed:.0f} s of story time "
        f"(a tick every {TICK_S:.0f} s of event time)",
        flush=True,
    )
    return 0


def _local_time(text: str) -> dt_time:
    try:
        return dt_time.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time of day (HH:MM): {text!r}") from exc


def _story_start(start_ms: int, clock: dt_time | None, tz: str) -> int:
    """The most recent moment (at or before ``start_ms``) the site's clock showed ``clock``."""
    if clock is None:
        return start_ms
    start = datetime.fromtimestamp(start_ms / 1000, ZoneInfo(tz))
    story = start.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    if story > start:
        story -= timedelta(days=1)
    return int(story.timestamp() * 1000)
