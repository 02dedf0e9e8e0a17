"""``crowdsafe backtest``: score a recorded series offline with the streaming detectors."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta, timezone
from pathlib import Path
from typing import get_args

from detectors.anomaly import SeasonalAnomalyDetector
from detectors.los import ZoneKind
from streams.calendar import SiteCalendar
from streams.config.calendar import CalendarError, load_calendar
from streams.config.settings import get_settings
from streams.config.site import load_site
from streams.offline.backtest import SeriesPolicy, backtest, write_csv
from streams.offline.series import SeriesError, read_series, time_order
from streams.ops.progress import Progress


def add_series_args(p: argparse.ArgumentParser) -> None:
    """The CSV options ``backtest`` and ``replay`` share."""
    p.add_argument("input", type=Path, metavar="INPUT.csv", help="CSV with a header row")
    p.add_argument("--time-col", default="timestamp", help="timestamp column (default: timestamp)")
    p.add_argument(
        "--value-col",
        help="count column (default: 'value', or the only column besides the time)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="score a recorded count series offline",
        description="Score a recorded series with exactly the streaming detectors. Timestamps: "
        "'YYYY-mm-dd HH:MM:SS', ISO 8601 (no offset = UTC) or epoch s/ms. Blank values are "
        "missing points.",
    )
    add_series_args(p)
    p.add_argument("--area", type=float, metavar="M2", help="zone area: adds density, forecast")
    p.add_argument(
        "--kind",
        choices=get_args(ZoneKind),
        default="walkway",
        help="kind of space: its thresholds come from the site file's defaults",
    )
    p.add_argument(
        "--site",
        type=Path,
        help="site file whose [defaults] give thresholds, hysteresis and hold times "
        "(default: CROWDSAFE_SITE)",
    )
    p.add_argument("--inflow-col", help="column of net inflow (entered - exited) since last row")
    p.add_argument(
        "--utc-offset-min",
        type=float,
        default=0.0,
        help="local time offset for the hour-of-week profile (480 for Guangzhou with epoch or "
        "offset timestamps; 0 for naive local timestamps)",
    )
    p.add_argument(
        "--tz",
        help="time zone of the place counted (e.g. Asia/Shanghai, Australia/Melbourne): "
        "hour-of-week bins follow its clock through daylight saving; overrides --utc-offset-min",
    )
    p.add_argument(
        "--country",
        metavar="CC",
        help="public holidays of this country, as the holidays package codes it (CN, AU, US): "
        "a holiday is scored like a Sunday plus what earlier holidays taught the detector",
    )
    p.add_argument("--subdiv", metavar="S", help="region of --country (e.g. VIC for AU)")
    p.add_argument(
        "--calendar",
        type=Path,
        metavar="FILE",
        help="TOML with a [calendar] table as in a site file: extra holidays, make-up working "
        "days, planned events with their uplift (--country/--subdiv override its own)",
    )
    p.add_argument("--out", type=Path, help="output CSV (default: standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.area is not None and args.area <= 0:
        print(f"backtest: --area must be > 0, got {args.area}", file=sys.stderr)
        return 2
    try:
        detector = (
            SeasonalAnomalyDetector(tz=args.tz)
            if args.tz
            else SeasonalAnomalyDetector(utc_offset_min=args.utc_offset_min)
        )
    except (ValueError, KeyError) as exc:  # zoneinfo: unknown or malformed name
        print(f"backtest: --tz {args.tz!r}: unknown time zone ({exc})", file=sys.stderr)
        return 2
    calendar = None
    if args.country or args.subdiv or args.calendar:
        try:
            settings = load_calendar(args.calendar, args.country, args.subdiv)
        except CalendarError as exc:
            print(f"backtest: {exc}", file=sys.stderr)
            return 2
        where = detector.tz or timezone(timedelta(minutes=args.utc_offset_min))
        calendar = SiteCalendar(settings, where)
    extra = (args.inflow_col,) if args.inflow_col else ()
    try:
        rows = list(read_series(args.input, args.time_col, args.value_col, extra))
    except (SeriesError, OSError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 1
    order = time_order(rows)
    if order != sorted(order):
        print(
            "backtest: rows are not in time order: scored in time order, written in file order",
            file=sys.stderr,
        )
    policy = None
    if args.area is not None:
        site = load_site(args.site or get_settings().site)
        policy = SeriesPolicy.for_series(site, args.kind, args.area)
    in_time = backtest(
        [rows[i] for i in order],
        policy,
        inflow_col=args.inflow_col,
        detector=detector,
        calendar=calendar,
    )
    scored: list = [None] * len(rows)
    progress = Progress("backtest", len(rows), minimum=10_000)
    for i, row in zip(order, in_time, strict=True):
        scored[i] = row
        progress.step()
    progress.done()
    tmp = None
    try:
        if args.out is None:
            n = write_csv(scored, sys.stdout, args.area is not None, calendar is not None)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target and rename, so a bad row leaves no half-written file.
            tmp = args.out.with_name(args.out.name + ".part")
            with tmp.open("w", newline="") as f:
                n = write_csv(scored, f, args.area is not None, calendar is not None)
            tmp.replace(args.out)
            tmp = None
    except (SeriesError, OSError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    if args.out is not None:
        print(f"backtest: {n} rows written to {args.out}", file=sys.stderr)
    print(f"backtest: {summary([scored[i] for i in order])}", file=sys.stderr)
    return 0


def summary(rows: list, threshold: float = 0.9) -> str:
    """One line: rows scored, alarm episodes (scores at or above ``threshold``; with an area,
    the alerts raised), the highest score and when.

    >>> from streams.offline.backtest import ScoredRow
    >>> rows = [ScoredRow("t1", 1, 5.0, 0.2), ScoredRow("t2", 2, 9.0, 0.95, alert="warning"),
    ...         ScoredRow("t3", 3, None, None), ScoredRow("t4", 4, 5.0, 0.1)]
    >>> summary(rows)
    '4 rows, 3 scored; 1 episode(s) of anomaly score >= 0.9; 1 alert(s) raised; highest score 0.9500 at t2'
    """
    scored = [r for r in rows if r.anomaly_score is not None]
    episodes, raised, above, alerting = 0, 0, False, False
    for r in rows:
        now_above = r.anomaly_score is not None and r.anomaly_score >= threshold
        episodes += now_above and not above
        above = now_above if r.anomaly_score is not None else above
        raised += bool(r.alert) and not alerting
        alerting = bool(r.alert)
    text = f"{len(rows):,} rows, {len(scored):,} scored; {episodes} episode(s) of anomaly score "
    text += f">= {threshold}"
    if any(r.density is not None for r in rows) or raised:
        text += f"; {raised} alert(s) raised"
    if scored:
        top = max(scored, key=lambda r: r.anomaly_score)
        text += f"; highest score {top.anomaly_score:.4f} at {top.timestamp}"
    return text
