"""Recorded count series from CSV: one place that reads rows and parses timestamps.

Shared by ``crowdsafe backtest`` and ``crowdsafe replay`` so that what is replayed through Kafka
is exactly what is scored offline. Accepted timestamps:

* ``YYYY-mm-dd HH:MM:SS`` and any ISO 8601 form ``datetime.fromisoformat`` reads (``T``,
  fractions, ``Z``, ``+08:00``); a timestamp without an offset is read as UTC;
* epoch numbers: seconds below 10^11 (until the year 5138), milliseconds above.

A blank value (or ``NA``/``nan``/``null``) is a missing point; any other unreadable value or
timestamp raises :class:`SeriesError` naming the file, the data row and the line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MISSING = frozenset({"", "na", "nan", "null", "none"})
_EPOCH_MS_FROM = 1e11  # epoch numbers at least this big are milliseconds


class SeriesError(ValueError):
    """A CSV that cannot be read as a series; the message names the row."""


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One data row: ``row`` counts data rows from 1, ``line`` is the file line (header = 1)."""

    row: int
    line: int
    timestamp: str
    ts_ms: int
    value: float | None
    extra: dict[str, float | None] = field(default_factory=dict)


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds of a timestamp string; ``ValueError`` when it is none of the forms.

    >>> parse_timestamp("2012-01-01 01:00:00")
    1325379600000
    >>> parse_timestamp("2012-01-01T09:00:00+08:00")
    1325379600000
    >>> parse_timestamp("1325379600"), parse_timestamp("1325379600000")
    (1325379600000, 1325379600000)
    >>> parse_timestamp("01/01/12 01:00")
    Traceback (most recent call last):
    ...
    ValueError: not a timestamp: '01/01/12 01:00'
    """
    s = text.strip()
    try:
        number = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"not a timestamp: {text!r}")
        return round(number if number >= _EPOCH_MS_FROM else number * 1000.0)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not a timestamp: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000.0)


def parse_value(text: str | None) -> float | None:
    """A float, or ``None`` for a blank/NA cell; ``ValueError`` for anything else.

    >>> parse_value(" 12 "), parse_value(""), parse_value("NA")
    (12.0, None, None)
    """
    if text is None or text.strip().lower() in MISSING:
        return None
    number = float(text)
    if math.isinf(number):  # "inf", "1e400": no count is infinite, the row is bad
        raise ValueError(f"not a finite number: {text!r}")
    return None if math.isnan(number) else number


def value_column(columns: Sequence[str], time_col: str, extra_cols: Sequence[str] = ()) -> str:
    """The count column when none is named: ``value`` if there is one, else the only column
    besides the time (and ``extra_cols``); a :class:`SeriesError` naming the columns otherwise.

    >>> value_column(["timestamp", "count"], "timestamp")
    'count'
    >>> value_column(["timestamp", "in", "out"], "timestamp")
    Traceback (most recent call last):
    ...
    streams.offline.series.SeriesError: which column holds the counts? the header has ['timestamp', 'in', 'out']: pass --value-col
    """
    if "value" in columns:
        return "value"
    others = [c for c in columns if c != time_col and c not in extra_cols]
    if len(others) == 1:
        return others[0]
    raise SeriesError(
        f"which column holds the counts? the header has {list(columns)}: pass --value-col"
    )


def read_series(
    path: str | Path,
    time_col: str = "timestamp",
    value_col: str | None = "value",
    extra_cols: Sequence[str] = (),
) -> Iterator[SeriesRow]:
    """Yield the rows of a CSV with a header, in file order (not sorted: streams aren't).
    ``value_col`` None: :func:`value_column` picks it."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if value_col is None:
            try:
                value_col = value_column(columns, time_col, extra_cols)
            except SeriesError as exc:
                raise SeriesError(f"{path}: {exc}") from None
        for col in (time_col, value_col, *extra_cols):
            if col not in columns:
                raise SeriesError(f"{path}: no column {col!r}; the header has {columns}")
        for row_no, rec in enumerate(reader, start=1):
            where = f"{path}: row {row_no} (line {reader.line_num})"
            raw_ts = rec[time_col]
            if raw_ts is None:
                raise SeriesError(f"{where}: too few columns")
            try:
                ts_ms = parse_timestamp(raw_ts)
            except ValueError:
                raise SeriesError(
                    f"{where}: bad timestamp {raw_ts!r} in column {time_col!r}; expected "
                    "'YYYY-mm-dd HH:MM:SS', ISO 8601 or epoch seconds/milliseconds"
                ) from None
            values: dict[str, float | None] = {}
            for col in (value_col, *extra_cols):
                try:
                    values[col] = parse_value(rec[col])
                except ValueError:
                    raise SeriesError(
                        f"{where}: bad value {rec[col]!r} in column {col!r}; expected a number "
                        "or a blank for a missing point"
                    ) from None
            value = values.pop(value_col)
            yield SeriesRow(row_no, reader.line_num, raw_ts, ts_ms, value, values)


def time_order(rows: Sequence[SeriesRow]) -> list[int]:
    """Indices of ``rows`` in time order (stable): the detectors' clock never runs back, so a
    file in the wrong order, or with one row stamped a year ahead, is scored in time order.

    >>> time_order([SeriesRow(1, 2, "b", 20, 1.0), SeriesRow(2, 3, "a", 10, 1.0)])
    [1, 0]
    """
    return sorted(range(len(rows)), key=lambda i: rows[i].ts_ms)
