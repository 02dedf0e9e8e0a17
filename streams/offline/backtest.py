"""Offline scoring of a recorded series with exactly the streaming detectors.

Rows go one by one, in file order, through :class:`~detectors.anomaly.SeasonalAnomalyDetector`
and (when the zone's area is known) :class:`~detectors.forecast.DensityForecaster`, just as the
worker feeds them readings, so a backtest shows what the live system would have said.

The ``alert`` column is the most severe alert episode open after the row (``warning``,
``critical`` or empty), with the worker's own episode logic (:mod:`detectors.alerting`:
escalation, hysteresis, hold time, minimum duration) over density, anomaly score and minutes to
critical; thresholds are the site file's defaults unless ``alarms`` are given.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TextIO

from detectors.alerting import Alarm, Episode
from detectors.anomaly import SeasonalAnomalyDetector
from detectors.forecast import DEFAULT_THRESHOLDS, DensityForecaster
from streams.offline.series import SeriesRow

# Site defaults (streams/config/sites/guangzhou-station.toml: [defaults], [defaults.anomaly], ...).
HYSTERESIS, HOLD_S = 0.1, 120.0


def default_alarms(warning: float, critical: float) -> dict[str, Alarm]:
    """Density, anomaly and forecast alarms with the site file's default settings."""
    return {
        "density": Alarm(warning, critical, HYSTERESIS, HOLD_S),
        "anomaly": Alarm(0.9, 0.99, HYSTERESIS, HOLD_S, min_duration_s=60.0),
        "forecast": Alarm(15.0, 5.0, HYSTERESIS, HOLD_S, higher_is_worse=False),
    }


def open_severity(
    alarms: Mapping[str, Alarm],
    episodes: dict[str, Episode],
    ts_ms: int,
    values: Mapping[str, float | None],
) -> str:
    """Feed one row's values to the alarms (as the worker does); the worst open severity.

    ``None`` skips density and anomaly (nothing known) but means "not heading there" for the
    forecast, as in the worker.
    """
    for kind, alarm in alarms.items():
        value = values.get(kind)
        if value is None and kind != "forecast":
            continue
        alarm.update(episodes.setdefault(kind, Episode()), ts_ms, value)
    open_ = {ep.severity for ep in episodes.values()}
    return "critical" if "critical" in open_ else "warning" if "warning" in open_ else ""


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One output row; ``density``/``minutes_to_critical``/``alert`` only with an area."""

    timestamp: str
    ts_ms: int
    value: float | None
    anomaly_score: float | None
    density: float | None = None
    minutes_to_critical: float | None = None
    alert: str = ""


def backtest(
    rows: Iterable[SeriesRow],
    area_m2: float | None = None,
    kind: Literal["walkway", "queuing"] = "walkway",
    inflow_col: str | None = None,
    detector: SeasonalAnomalyDetector | None = None,
    forecaster: DensityForecaster | None = None,
    alarms: Mapping[str, Alarm] | None = None,
) -> Iterator[ScoredRow]:
    """Score ``rows`` in order; pass a detector/forecaster to resume from a saved state.

    >>> from streams.offline.series import SeriesRow
    >>> rows = [SeriesRow(i + 1, i + 2, str(i), i * 60_000, 100.0 + i) for i in range(5)]
    >>> out = list(backtest(rows, area_m2=100.0))
    >>> out[-1].anomaly_score, out[-1].density, out[-1].alert   # warming up; 1.04 p/m²
    (0.0, 1.04, '')
    """
    det = detector or SeasonalAnomalyDetector()
    fc = forecaster
    if fc is None and area_m2 is not None:
        fc = DensityForecaster.for_kind(area_m2, kind)
    warning, critical = (fc.warning, fc.critical) if fc else DEFAULT_THRESHOLDS[kind]
    alarms = alarms or default_alarms(warning, critical)
    episodes: dict[str, Episode] = {}
    for r in rows:
        score = det.update(r.ts_ms, r.value)
        if fc is None:
            yield ScoredRow(r.timestamp, r.ts_ms, r.value, score)
            continue
        inflow = r.extra.get(inflow_col) if inflow_col else None
        forecast = fc.update(r.ts_ms, r.value, inflow)
        density = None if r.value is None else max(r.value, 0.0) / fc.area_m2
        soon = forecast.minutes_to_critical
        if r.value is None:  # blind: nothing raises, escalates or clears
            alert = open_severity({}, episodes, r.ts_ms, {})
        else:
            values = {"density": density, "anomaly": score, "forecast": soon}
            alert = open_severity(alarms, episodes, r.ts_ms, values)
        yield ScoredRow(r.timestamp, r.ts_ms, r.value, score, density, soon, alert)


def _fmt(x: float | None, digits: int) -> str:
    if x is None:
        return ""
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def write_csv(rows: Iterable[ScoredRow], out: TextIO, with_density: bool) -> int:
    """Write ``timestamp,value,anomaly_score[,density,minutes_to_critical,alert]``; count rows."""
    writer = csv.writer(out, lineterminator="\n")
    header = ["timestamp", "value", "anomaly_score"]
    if with_density:
        header += ["density", "minutes_to_critical", "alert"]
    writer.writerow(header)
    n = 0
    for r in rows:
        line = [r.timestamp, _fmt(r.value, 6), _fmt(r.anomaly_score, 4)]
        if with_density:
            line += [_fmt(r.density, 4), _fmt(r.minutes_to_critical, 1), r.alert]
        writer.writerow(line)
        n += 1
    return n
