"""Offline scoring of a recorded series with exactly the streaming detectors.

Rows go one by one, in file order, through :class:`~detectors.anomaly.SeasonalAnomalyDetector`
and (when the zone's area is known) :class:`~detectors.forecast.DensityForecaster`, just as the
worker feeds them readings, so a backtest shows what the live system would have said.

The ``alert`` column uses a stand-in rule until the shared alert episodes
(``detectors/alerting.py``) are wired in; thresholds are the site file's defaults:

* ``critical``: density at or above critical, or critical forecast within 5 minutes;
* ``warning``: density at or above warning, critical forecast within 15 minutes, or an
  anomaly score of 0.9 or more;
* empty otherwise (and on missing points). No hysteresis, no hold time: one row, one verdict.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, TextIO

from detectors.anomaly import SeasonalAnomalyDetector
from detectors.forecast import DEFAULT_THRESHOLDS, DensityForecaster
from detectors.series import SeriesRow

# Site defaults (deploy/sites/guangzhou-station.toml: [defaults.anomaly], [defaults.forecast]).
ANOMALY_WARNING = 0.9
FORECAST_WARNING_MIN = 15.0
FORECAST_CRITICAL_MIN = 5.0


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


def simple_alert(
    score: float | None,
    density: float | None,
    minutes_to_critical: float | None,
    warning: float,
    critical: float,
) -> str:
    """The stand-in alert rule of this module's docstring.

    >>> simple_alert(0.2, 3.1, None, warning=2.0, critical=3.0)
    'critical'
    >>> simple_alert(0.2, 1.5, 12.0, warning=2.0, critical=3.0)
    'warning'
    >>> simple_alert(0.95, 0.1, None, warning=2.0, critical=3.0)
    'warning'
    >>> simple_alert(0.5, 1.0, None, warning=2.0, critical=3.0)
    ''
    """
    soon = minutes_to_critical
    if density is not None and density >= critical or soon is not None and soon <= 5.0:
        return "critical"
    if (
        density is not None
        and density >= warning
        or soon is not None
        and soon <= FORECAST_WARNING_MIN
        or score is not None
        and score >= ANOMALY_WARNING
    ):
        return "warning"
    return ""


def backtest(
    rows: Iterable[SeriesRow],
    area_m2: float | None = None,
    kind: Literal["walkway", "queuing"] = "walkway",
    inflow_col: str | None = None,
    detector: SeasonalAnomalyDetector | None = None,
    forecaster: DensityForecaster | None = None,
) -> Iterator[ScoredRow]:
    """Score ``rows`` in order; pass a detector/forecaster to resume from a saved state.

    >>> from detectors.series import SeriesRow
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
    for r in rows:
        score = det.update(r.ts_ms, r.value)
        if fc is None:
            yield ScoredRow(r.timestamp, r.ts_ms, r.value, score)
            continue
        inflow = r.extra.get(inflow_col) if inflow_col else None
        forecast = fc.update(r.ts_ms, r.value, inflow)
        density = None if r.value is None else max(r.value, 0.0) / fc.area_m2
        soon = forecast.minutes_to_critical
        alert = "" if r.value is None else simple_alert(score, density, soon, warning, critical)
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
