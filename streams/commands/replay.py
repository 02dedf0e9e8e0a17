"""``crowdsafe replay``: publish a recorded series to ``crowd.readings`` as sensor readings.

Each CSV row becomes one :class:`streams.schema.payloads.Reading` with the row's original event time, so
the worker scores the replay exactly as ``crowdsafe backtest`` scores the file. A blank value is
published as an ``offline`` reading (an outage, never a zero), as a live sensor would report it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from streams.commands.backtest import add_series_args
from streams.offline.series import SeriesError, SeriesRow, read_series, time_order
from streams.schema.intake import describe
from streams.schema.payloads import Reading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="publish a recorded count series to crowd.readings")
    add_series_args(p)
    p.add_argument("--zone", required=True, help="zone id the readings are for (of the site)")
    p.add_argument("--site", type=Path, help="site file (default: CROWDSAFE_SITE)")
    p.add_argument("--source-id", help="source id of the readings (default: replay:<file name>)")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="X times real time (sleeps event-time gap / X between rows); 0: as fast as possible",
    )
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: from settings)")
    p.add_argument("--topic", help="topic (default: the readings topic of the settings)")
    p.set_defaults(func=run)


def readings(
    rows: Iterable[SeriesRow], zone: str, source_id: str, seq_base: int = 0
) -> Iterator[dict[str, Any]]:
    """Reading dicts for ``rows``, validated against the schema (``seq`` counts from
    ``seq_base``; the command passes the wall clock in µs, so a second replay of the same file
    is not taken for re-delivered readings).

    >>> from streams.offline.series import SeriesRow
    >>> rows = [SeriesRow(1, 2, "t", 1_700_000_000_000, 12.4), SeriesRow(2, 3, "u", 1_700_000_060_000, None)]
    >>> [(r["seq"], r.get("count"), r["status"]) for r in readings(rows, "z1", "replay:x")]
    [(0, 12, 'ok'), (1, None, 'offline')]
    """
    for seq, r in enumerate(rows, start=seq_base):
        reading: dict[str, Any] = {
            "source_id": source_id,
            "kind": "sensor",
            "zone_id": zone,
            "ts": r.ts_ms,
            "seq": seq,
            "simulated": True,  # history replayed, not a live measurement: CAP says Exercise
        }
        if r.value is None:
            reading.update(status="offline", reason=f"no value in row {r.row} of the recording")
        else:
            reading.update(count=round(r.value), status="ok")
        try:
            msgspec.convert(reading, Reading)
        except msgspec.ValidationError as exc:
            raise SeriesError(
                f"row {r.row} (line {r.line}): not a valid reading: {describe(exc)}"
            ) from None
        yield reading


def run(args: argparse.Namespace) -> int:
    if args.speed < 0:
        print(f"replay: --speed must be >= 0, got {args.speed}", file=sys.stderr)
        return 2
    # kafka-python only when actually publishing.
    from kafka.errors import KafkaError

    from streams.config.settings import get_settings
    from streams.config.site import load_site
    from streams.edge.producer import ReadingProducer

    settings = get_settings()
    site = load_site(args.site or settings.site)
    if args.zone not in site.zone_by_id:  # else every reading would be dead-lettered, silently
        known = ", ".join(sorted(site.zone_by_id))
        print(f"replay: unknown zone {args.zone!r} (site {site.site.id}: {known})", file=sys.stderr)
        return 2
    source_id = args.source_id or f"replay:{args.input.name}"
    try:
        rows = list(read_series(args.input, args.time_col, args.value_col))
    except (SeriesError, OSError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    rows = [rows[i] for i in time_order(rows)]  # in event-time order, as backtest scores them
    sent = 0
    previous_ts: int | None = None
    try:
        with ReadingProducer(bootstrap=args.bootstrap, topic=args.topic) as producer:
            for reading in readings(rows, args.zone, source_id, time.time_ns() // 1000):
                if args.speed > 0 and previous_ts is not None and reading["ts"] > previous_ts:
                    time.sleep((reading["ts"] - previous_ts) / 1000.0 / args.speed)
                previous_ts = reading["ts"]
                producer.send(reading)
                sent += 1
    except (SeriesError, OSError, KafkaError) as exc:
        print(f"replay: {exc} ({sent} readings sent before it)", file=sys.stderr)
        return 1
    print(
        f"replay: {sent} readings for zone {args.zone!r} sent to {producer.topic}", file=sys.stderr
    )
    late = settings.allowed_lateness_s
    print(
        f"replay: history more than {late:.0f} s behind the zone's newest reading is "
        "dead-lettered as late; to replay into a live site, run a worker of its own "
        "(CROWDSAFE_APP_ID and CROWDSAFE_*_TOPIC) or use a zone kept for replays",
        file=sys.stderr,
    )
    return 0
