"""Offline scoring of a recorded series with exactly the streaming detectors and alert policy.

Rows go one by one, in file order, through :class:`~detectors.anomaly.SeasonalAnomalyDetector`
and (when the zone's area is known) :class:`~detectors.forecast.DensityForecaster`, just as the
worker feeds them readings, so a backtest shows what the live system would have said.

The ``alert`` column is the most severe alert episode open after the row (``warning``,
``critical`` or empty). The alert policy (which value each kind watches, when it is skipped,
thresholds, hysteresis, hold time, minimum duration) is the worker's own: the kinds of
:mod:`streams.zone.alerts` that watch a count series (density, anomaly, forecast), with the
site file's settings for a zone of the series' kind and area.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from detectors.alerting import Alarm, Episode
from detectors.anomaly import ORDINARY_DAY, SeasonalAnomalyDetector
from detectors.forecast import DensityForecaster
from detectors.los import ZoneKind, level_of_service
from streams.calendar import SiteCalendar
from streams.config.site import Site, Zone
from streams.offline.series import SeriesRow
from streams.schema.payloads import SCHEMA_VERSION, SourceStatus, ZoneState
from streams.zone import alerts
from streams.zone.alerts import AlertKind, ZoneContext

# The kinds that watch one count series; source-offline needs the zone's sources.
SERIES_KINDS = ("density", "anomaly", "forecast")


@dataclass(frozen=True, slots=True)
class SeriesPolicy:
    """A series scored as a zone of ``site``: its thresholds and its alert kinds' alarms."""

    zone: Zone
    alarms: list[tuple[AlertKind, Alarm]]
    warning: float
    critical: float

    @classmethod
    def for_series(cls, site: Site, kind: ZoneKind, area_m2: float) -> SeriesPolicy:
        zone = Zone(id="series", name="series", kind=kind, area_m2=area_m2)
        t = site.thresholds(zone)
        kinds = [k for name, k in alerts.registry().items() if name in SERIES_KINDS]
        return cls(zone, [(k, k.alarm(site, zone)) for k in kinds], t.warning, t.critical)

    def snapshot(
        self, ts: int, occupancy: float | None, score: float, minutes_to_critical: float | None
    ) -> ZoneState:
        """One row as the zone-state record the alert kinds judge in the worker; a series has
        no sources, so none is stale or offline, and no forecast band."""
        z, blind = self.zone, occupancy is None
        rho = None if blind else max(occupancy, 0.0) / z.area_m2
        return ZoneState(
            v=SCHEMA_VERSION,
            zone_id=z.id,
            name=z.name,
            kind=z.kind,
            ts=ts,
            occupancy=occupancy,  # None: blind, so nothing raises, escalates or clears
            area_m2=z.area_m2,
            density=rho,
            los=None if rho is None else level_of_service(rho, z.kind),
            warning=self.warning,
            critical=self.critical,
            sources=SourceStatus(fresh=[], stale=[], offline=[]),
            anomaly_score=None if blind else score,
            minutes_to_warning=None,
            minutes_to_critical=minutes_to_critical,
            minutes_to_critical_low=None,
            minutes_to_critical_high=None,
        )

    def open_severity(self, episodes: dict[str, Episode], snap: ZoneState) -> str:
        """Feed one row's snapshot to the alarms (as the worker does); the worst open severity."""
        ctx = ZoneContext(self.zone, frozenset())
        for kind, alarm in self.alarms:
            if not kind.skipped(snap, ctx):
                ep = episodes.setdefault(kind.name, Episode())
                alarm.update(ep, snap.ts, kind.value(snap, ctx))
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
    calendar: str = ""  # what the calendar says is in force (a holiday, an event)


def backtest(
    rows: Iterable[SeriesRow],
    policy: SeriesPolicy | None = None,
    inflow_col: str | None = None,
    detector: SeasonalAnomalyDetector | None = None,
    forecaster: DensityForecaster | None = None,
    calendar: SiteCalendar | None = None,
) -> Iterator[ScoredRow]:
    """Score ``rows`` in order; without a ``policy`` (no area) only the anomaly score. Pass a
    detector/forecaster to resume from a saved state, a calendar for holidays and events.

    >>> from streams.config.site import Defaults, Site, SiteInfo, Thresholds, Zone
    >>> from streams.offline.series import SeriesRow
    >>> site = Site(site=SiteInfo(id="s", name="S"), zones=[Zone(id="z", name="Z",
    ...     kind="walkway", area_m2=1)], defaults=Defaults(thresholds={"walkway":
    ...     Thresholds(warning=2.0, critical=3.0)}))
    >>> rows = [SeriesRow(i + 1, i + 2, str(i), i * 60_000, 100.0 + i) for i in range(5)]
    >>> out = list(backtest(rows, SeriesPolicy.for_series(site, "walkway", 100.0)))
    >>> out[-1].anomaly_score, out[-1].density, out[-1].alert   # warming up; 1.04 p/m²
    (0.0, 1.04, '')
    """
    det = detector or SeasonalAnomalyDetector()
    fc = forecaster
    if fc is None and policy is not None:
        fc = DensityForecaster(policy.zone.area_m2, policy.warning, policy.critical)
    episodes: dict[str, Episode] = {}
    for r in rows:
        day = calendar.day(r.ts_ms) if calendar is not None else ORDINARY_DAY
        score = det.update(r.ts_ms, r.value, day)
        if fc is None or policy is None:
            yield ScoredRow(r.timestamp, r.ts_ms, r.value, score, calendar=day.label)
            continue
        inflow = r.extra.get(inflow_col) if inflow_col else None
        forecast = fc.update(r.ts_ms, r.value, inflow)
        snap = policy.snapshot(r.ts_ms, r.value, score, forecast.minutes_to_critical)
        alert = policy.open_severity(episodes, snap)
        yield ScoredRow(
            r.timestamp, r.ts_ms, r.value, score, snap.density, snap.minutes_to_critical, alert,
            day.label,
        )  # fmt: skip


def _fmt(x: float | None, digits: int) -> str:
    if x is None:
        return ""
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def write_csv(
    rows: Iterable[ScoredRow], out: TextIO, with_density: bool, with_calendar: bool = False
) -> int:
    """Write ``timestamp,value,anomaly_score[,density,minutes_to_critical,alert][,calendar]``;
    count rows."""
    writer = csv.writer(out, lineterminator="\n")
    header = ["timestamp", "value", "anomaly_score"]
    if with_density:
        header += ["density", "minutes_to_critical", "alert"]
    if with_calendar:
        header.append("calendar")
    writer.writerow(header)
    n = 0
    for r in rows:
        line = [r.timestamp, _fmt(r.value, 6), _fmt(r.anomaly_score, 4)]
        if with_density:
            line += [_fmt(r.density, 4), _fmt(r.minutes_to_critical, 1), r.alert]
        if with_calendar:
            line.append(r.calendar)
        writer.writerow(line)
        n += 1
    return n
