"""Evaluation of the anomaly detector: labelled windows, alarm episodes, metrics, scenarios.

Metrics at one fixed score threshold for every dataset:

* an *alarm episode* is a run of scores at or above the threshold; alarms less than
  ``merge_gap`` apart belong to one episode (one page to the command centre, not twenty);
* a labelled event is *detected* when an alarm falls inside its window; the *delay* is the first
  such alarm's time minus the window's start;
* a *false alarm* is an episode that starts outside every labelled window (events, and windows
  labelled as known-but-not-events such as public holidays, which are counted neither way),
  after the burn-in; reported per week of scored data. On real data these are an upper bound:
  some are real events nobody labelled.

The synthetic scenarios are a station zone's occupancy at irregular steps (a reading every minute
on average) with a daily two-peak rhythm, quieter weekends, zeros at night, day-to-day and
minute-to-minute noise, and short outages; into its last three weeks go labelled surges, a blind
camera (zeros in a busy hour), slow (linear) or accelerating build-ups, or one level shift. Each
series also carries what a gate counter would report (net inflow per reading).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median

import numpy as np

from detectors.alerting import Episode
from detectors.anomaly import SeasonalAnomalyDetector
from detectors.forecast import DensityForecaster, Forecast
from streams.calendar import SiteCalendar
from streams.offline.backtest import SeriesPolicy
from streams.offline.series import parse_timestamp
from streams.zone.alerts.base import ZoneContext

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS


@dataclass(frozen=True, slots=True)
class Window:
    """A labelled interval ``[start_ms, end_ms]`` of event time."""

    start_ms: int
    end_ms: int
    label: str

    def __contains__(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms <= self.end_ms


def window(start: str, end: str, label: str) -> Window:
    """A window from two naive ``YYYY-mm-dd HH:MM`` times (read as UTC, like the CSVs).

    >>> w = window("2013-12-31 18:00", "2014-01-01 04:00", "NYE")
    >>> (w.end_ms - w.start_ms) // HOUR_MS
    10
    """
    return Window(parse_timestamp(start), parse_timestamp(end), label)


@dataclass(slots=True)
class Metrics:
    """What one series scored: see the module docstring."""

    name: str
    scored_weeks: float = 0.0
    events: int = 0
    detected: int = 0
    delays_min: list[float] = field(default_factory=list)
    episodes: int = 0
    false_alarms: int = 0
    missed: list[str] = field(default_factory=list)
    # Over the whole series, burn-in included: false alarms (episodes starting outside every
    # event window) and weeks of data in the first week, on holidays, on other days ...
    fa_first_week: int = 0
    fa_holidays: int = 0
    fa_other: int = 0
    weeks_first: float = 0.0
    weeks_holidays: float = 0.0
    weeks_other: float = 0.0
    # ... and the score's calibration: normal points (outside events) scored, and above 0.9/0.99.
    normal_points: int = 0
    over_090: int = 0
    over_099: int = 0

    @property
    def false_alarms_per_week(self) -> float:
        return self.false_alarms / self.scored_weeks if self.scored_weeks else 0.0

    @property
    def median_delay_min(self) -> float | None:
        return median(self.delays_min) if self.delays_min else None

    @property
    def fa_all_days(self) -> float:
        """False alarms per week over everything: first week, holidays, other days."""
        weeks = self.weeks_first + self.weeks_holidays + self.weeks_other
        return (self.fa_first_week + self.fa_holidays + self.fa_other) / weeks if weeks else 0.0

    def rate(self, part: str) -> float | None:
        """False alarms per week on ``first``, ``holidays`` or ``other`` days."""
        weeks = getattr(self, f"weeks_{part}")
        fa = getattr(self, "fa_first_week" if part == "first" else f"fa_{part}")
        return fa / weeks if weeks else None

    def merge(self, other: Metrics) -> None:
        for name in self.__dataclass_fields__:
            if name != "name":
                setattr(self, name, getattr(self, name) + getattr(other, name))


def alarm_episodes(
    ts_ms: Sequence[int], scores: Sequence[float | None], threshold: float, merge_gap_ms: int
) -> list[tuple[int, int]]:
    """(first, last) alarm times of each episode.

    >>> alarm_episodes([0, 1, 2, 3, 9, 10], [0.95, 0.2, 0.91, None, 0.99, 0.1], 0.9, 3)
    [(0, 2), (9, 9)]
    """
    episodes: list[tuple[int, int]] = []
    for t, s in zip(ts_ms, scores, strict=True):
        if s is None or s < threshold:
            continue
        if episodes and t - episodes[-1][1] <= merge_gap_ms:
            episodes[-1] = (episodes[-1][0], t)
        else:
            episodes.append((t, t))
    return episodes


def score_series(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    detector: SeasonalAnomalyDetector | None = None,
    calendar: SiteCalendar | None = None,
) -> list[float | None]:
    """Scores of a series through one streaming detector, in order (with the holidays and
    events of ``calendar``, if given)."""
    det = detector or SeasonalAnomalyDetector()
    if calendar is None:
        return [det.update(t, v) for t, v in zip(ts_ms, values, strict=True)]
    return [det.update(t, v, calendar.day(t)) for t, v in zip(ts_ms, values, strict=True)]


def evaluate(
    name: str,
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    scores: Sequence[float | None],
    events: Iterable[Window] = (),
    known: Iterable[Window] = (),
    threshold: float = 0.9,
    burn_in_ms: int = 14 * DAY_MS,
    merge_gap_ms: int = 2 * HOUR_MS,
) -> Metrics:
    """Metrics of one scored series against its labels (events after the burn-in only)."""
    m = Metrics(name)
    if not ts_ms:
        return m
    start = ts_ms[0] + burn_in_ms
    # Weeks of scored data: observed points' spacing, gaps over two hours excluded.
    scored_ms = 0
    prev = None
    for t, v in zip(ts_ms, values, strict=True):
        if v is None or t < start:
            continue
        if prev is not None and 0 < t - prev <= 2 * HOUR_MS:
            scored_ms += t - prev
        prev = t
    m.scored_weeks = scored_ms / WEEK_MS
    all_events = list(events)
    events = [w for w in all_events if w.start_ms >= start and w.start_ms <= ts_ms[-1]]
    labelled = [*events, *known]
    eps = [e for e in alarm_episodes(ts_ms, scores, threshold, merge_gap_ms) if e[0] >= start]
    m.episodes = len(eps)
    m.false_alarms = sum(1 for a, b in eps if not any(a in w or b in w for w in labelled))
    _breakdown(m, ts_ms, values, scores, all_events, list(known), threshold, merge_gap_ms)
    alarms = [t for t, s in zip(ts_ms, scores, strict=True) if s is not None and s >= threshold]
    for w in events:
        m.events += 1
        hits = [t for t in alarms if t in w]
        if hits:
            m.detected += 1
            m.delays_min.append((hits[0] - w.start_ms) / MINUTE_MS)
        else:
            m.missed.append(w.label)
    return m


def _breakdown(
    m: Metrics,
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    scores: Sequence[float | None],
    events: list[Window],
    holidays: list[Window],
    threshold: float,
    merge_gap_ms: int,
) -> None:
    """Fill ``m``'s whole-series false alarms by kind of day and the score's calibration."""
    first_end = ts_ms[0] + WEEK_MS

    def part(t: int) -> str:
        if t < first_end:
            return "first"
        return "holidays" if any(t in w for w in holidays) else "other"

    prev = None
    for t, v, s in zip(ts_ms, values, scores, strict=True):
        if v is None:
            continue
        if prev is not None and 0 < t - prev <= 2 * HOUR_MS:
            name = f"weeks_{part(t)}"
            setattr(m, name, getattr(m, name) + (t - prev) / WEEK_MS)
        prev = t
        if s is not None and not any(t in w for w in events):
            m.normal_points += 1
            m.over_090 += s >= 0.9
            m.over_099 += s >= 0.99
    for a, b in alarm_episodes(ts_ms, scores, threshold, merge_gap_ms):
        if any(a in w or b in w for w in events):
            continue
        where = part(a)
        name = "fa_first_week" if where == "first" else f"fa_{where}"
        setattr(m, name, getattr(m, name) + 1)


# -- synthetic scenarios ---------------------------------------------------------------------

SCENARIOS = (
    "normal",
    "surge",
    "blind-camera",
    "slow-build-up",
    "accelerating-build-up",
    "level-shift",
)


def station_rhythm(hour_of_week: np.ndarray) -> np.ndarray:
    """Expected occupancy of a station zone: morning and evening peaks, quieter weekends.

    >>> [int(x) for x in station_rhythm(np.array([3.0, 8.5, 18.0, 5 * 24 + 13.0]))]
    [2, 1220, 1483, 1007]
    """
    day = hour_of_week // 24
    h = hour_of_week % 24
    weekend = day >= 5
    morning = np.where(weekend, 500.0, 1100.0) * np.exp(-0.5 * ((h - 8.5) / 1.2) ** 2)
    midday = np.where(weekend, 1000.0, 600.0) * np.exp(-0.5 * ((h - 13.0) / 2.5) ** 2)
    evening = 1400.0 * np.exp(-0.5 * ((h - 18.0) / 1.5) ** 2)
    return 2.0 + morning + midday + evening


# Memory of the synthetic zones' minute-to-minute variation (an AR(1) on the log scale).
AR_MEMORY_S = 1200.0
# The synthetic gate: people stay in the zone this long on average (a station walkway), so a
# crowd of c people sends c / DWELL_S persons a second through the gates each way on top of its
# net change; each count is Poisson with a 2 % miscount per reading, and the entry counter
# reads a few per mille high or low for the whole series (sd GATE_BIAS).
DWELL_S = 300.0
GATE_BIAS = 0.005


@dataclass(frozen=True, slots=True)
class SyntheticSeries:
    """A synthetic series and how it was made: ``trend`` is the noise-free crowd (rhythm x the
    day's factor x the event), ``ar`` the log-scale wander on top of it at each reading; the
    values are Poisson counts of ``trend * exp(ar)`` (with a camera's 3 % miscounts).
    ``inflow`` is what a gate counter at the zone's entrances reports at each reading: persons
    in minus persons out since the previous reading (see :func:`gate_counts`)."""

    ts: list[int]
    values: list[float | None]
    events: list[Window]
    trend: np.ndarray
    ar: np.ndarray
    inflow: list[float]


def synthetic(
    scenario: str, seed: int, weeks: int = 5, mean_step_s: float = 60.0
) -> tuple[list[int], list[float | None], list[Window]]:
    """A labelled synthetic series: (ts_ms, values, event windows). Deterministic per seed.

    >>> ts, vs, ev = synthetic("surge", seed=1, weeks=3)
    >>> len(ev), all(b > a for a, b in zip(ts, ts[1:])), min(v for v in vs if v is not None)
    (4, True, 0.0)
    """
    series = synthetic_series(scenario, seed, weeks, mean_step_s)
    return series.ts, series.values, series.events


def synthetic_series(
    scenario: str, seed: int, weeks: int = 5, mean_step_s: float = 60.0
) -> SyntheticSeries:
    """:func:`synthetic`, with the noise-free trend and the wander kept."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {SCENARIOS}")
    rng = np.random.default_rng(seed)
    t0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday
    span_s = weeks * 7 * 86400
    steps = 5.0 + rng.exponential(mean_step_s - 5.0, size=int(span_s / mean_step_s * 1.1))
    t_s = np.cumsum(steps)
    t_s = t_s[t_s < span_s]
    how = t_s / 3600.0 % 168.0
    mean = station_rhythm(how)
    # Day-to-day (weather, trains) and minute-to-minute (AR(1), ~20 min memory) variation.
    day_idx = (t_s // 86400).astype(int)
    day_factor = np.exp(rng.normal(0.0, 0.08, size=day_idx.max() + 1))[day_idx]
    ar = np.empty_like(t_s)
    x = 0.0
    innov = rng.normal(0.0, 1.0, size=len(t_s))
    for i, dt in enumerate(steps[: len(t_s)]):
        rho = math.exp(-dt / AR_MEMORY_S)
        x = rho * x + math.sqrt(1.0 - rho * rho) * 0.06 * innov[i]
        ar[i] = x
    trend = mean * day_factor
    level = trend * np.exp(ar)

    events: list[Window] = []
    if scenario != "normal":
        days = rng.choice(np.arange(14, weeks * 7), size=4, replace=False)
        if scenario == "level-shift":
            days = days[:1]
        for d in sorted(days):
            start_h = float(rng.uniform(8.0, 19.0))
            start_s = d * 86400 + start_h * 3600
            u = t_s - start_s
            if scenario == "surge":  # 1.8 x for 30 minutes, three-minute onset
                end_s = 1800.0
                factor = 1.0 + 0.8 * np.clip(u / 180.0, 0, 1) * ((u >= 0) & (u <= end_s))
            elif scenario == "blind-camera":  # reads zero for an hour
                end_s = 3600.0
                factor = np.where((u >= 0) & (u <= end_s), 0.0, 1.0)
            elif scenario == "slow-build-up":  # to 2.5 x over 90 minutes, held 30
                end_s = 7200.0
                ramp = 1.0 + 1.5 * np.clip(u / 5400.0, 0, 1)
                factor = np.where((u >= 0) & (u <= end_s), ramp, 1.0)
            elif scenario == "accelerating-build-up":  # 1 + 2 (u/60 min)², to 3 x, held 30
                end_s = 5400.0
                ramp = 1.0 + 2.0 * np.clip(u / 3600.0, 0, 1) ** 2
                factor = np.where((u >= 0) & (u <= end_s), ramp, 1.0)
            else:  # level shift: 1.5 x from then on; detected within a day or missed
                end_s = 86400.0
                factor = np.where(u >= 0, 1.5, 1.0)
            level *= factor
            trend = trend * factor
            events.append(
                Window(
                    t0 + int(start_s * 1000),
                    t0 + int((start_s + end_s) * 1000),
                    f"{scenario}@day{d}",
                )
            )
    # Counting noise: Poisson, plus 3 % miscounts of a camera counter.
    counts = rng.poisson(level * np.exp(rng.normal(0.0, 0.03, size=len(level)))).astype(float)
    values: list[float | None] = counts.tolist()
    # Outages: ~0.5 % of readings missing, in runs.
    for start in rng.choice(len(values), size=max(1, len(values) // 2000), replace=False):
        for i in range(start, min(start + 10, len(values))):
            values[i] = None
    ts = [t0 + int(s * 1000) for s in t_s]
    # Drawn last, so the camera's values of every scenario stay what they were before gates.
    inflow = gate_counts(rng, level, np.diff(t_s, prepend=t_s[0]))
    return SyntheticSeries(ts, values, events, trend, ar, inflow)


def gate_counts(rng: np.random.Generator, crowd: np.ndarray, dt_s: np.ndarray) -> list[float]:
    """Net inflow a gate counter reports at each reading: the crowd's change since the previous
    reading plus counting noise. Between readings ``crowd * dt / DWELL_S`` people pass each way
    (a crowd turns over, Little's law: flow = crowd / dwell), the net change on top of the
    entries (or exits when it falls); entries and exits are Poisson counts with a 2 % miscount
    each, entries biased by one series-wide factor (a counter reading high or low).

    >>> rng = np.random.default_rng(0)
    >>> crowd = np.array([1000.0, 1010.0, 1030.0])
    >>> [round(x) for x in gate_counts(rng, crowd, np.array([0.0, 60.0, 60.0]))]
    [0, -16, 19]
    """
    net = np.diff(crowd, prepend=crowd[0])
    through = np.maximum(np.roll(crowd, 1), 0.0) * dt_s / DWELL_S
    through[0] = 0.0
    bias = 1.0 + rng.normal(0.0, GATE_BIAS)
    entries = rng.poisson(through + np.maximum(net, 0.0)) * bias
    exits = rng.poisson(through + np.maximum(-net, 0.0)).astype(float)
    miscount = np.exp(rng.normal(0.0, 0.02, size=(2, len(crowd))))
    return (entries * miscount[0] - exits * miscount[1]).tolist()


# -- labels of the real recordings ------------------------------------------------------------

# Melbourne (local time, as in the CSVs). Events: nights and festivals that draw crowds to the
# centre, from the City of Melbourne's calendar: New Year's Eve fireworks (18:00 to 04:00),
# White Night Melbourne (all-night arts festival, 23 Feb 2013 and 22 Feb 2014, 18:00 to 08:00)
# and Moomba (Labour Day weekend, Friday to Monday, on the river by sensors 05 and 07).
# Windows were set from the calendar before looking at the scores, and are the same for every
# sensor: an event that does not pass a sensor counts as missed there.
MELBOURNE_EVENTS: tuple[Window, ...] = (
    *(window(f"{y}-12-31 18:00", f"{y + 1}-01-01 04:00", f"NYE {y}") for y in (2012, 2013, 2014)),
    window("2013-02-23 18:00", "2013-02-24 08:00", "White Night 2013"),
    window("2014-02-22 18:00", "2014-02-23 08:00", "White Night 2014"),
    window("2012-03-09 00:00", "2012-03-13 00:00", "Moomba 2012"),
    window("2013-03-08 00:00", "2013-03-12 00:00", "Moomba 2013"),
    window("2014-03-07 00:00", "2014-03-11 00:00", "Moomba 2014"),
)
# Known days that are not crowd events: Victorian public holidays (whole days; the city is
# quieter, or busier in its parks). Alarms on them are neither detections nor false alarms.
_HOLIDAYS = (
    "2012-01-02 2012-01-26 2012-03-12 2012-04-06 2012-04-07 2012-04-09 2012-04-25 2012-06-11 "
    "2012-11-06 2012-12-25 2012-12-26 2013-01-01 2013-01-28 2013-03-11 2013-03-29 2013-03-30 "
    "2013-04-01 2013-04-25 2013-06-10 2013-11-05 2013-12-25 2013-12-26 2014-01-01 2014-01-27 "
    "2014-03-10 2014-04-18 2014-04-19 2014-04-21 2014-04-25 2014-06-09 2014-11-04 2014-12-25 "
    "2014-12-26 2015-01-01 2015-01-26"
).split()
MELBOURNE_KNOWN: tuple[Window, ...] = tuple(
    window(f"{d} 00:00", f"{d} 23:59", f"holiday {d}") for d in _HOLIDAYS
)


# -- the forecaster on build-ups ------------------------------------------------------------------


@dataclass(slots=True)
class LeadAccuracy:
    """Forecasts of minutes to critical made ``lead_min`` before the true crossing."""

    lead_min: float
    crossings: int = 0
    forecasts: int = 0  # how many of them were not None
    abs_errors: list[float] = field(default_factory=list)
    in_band: int = 0

    @property
    def median_abs_error(self) -> float | None:
        return median(self.abs_errors) if self.abs_errors else None

    @property
    def coverage(self) -> float | None:
        """Share of the forecasts given whose band held the true crossing."""
        return self.in_band / self.forecasts if self.forecasts else None

    def merge(self, other: LeadAccuracy) -> None:
        self.crossings += other.crossings
        self.forecasts += other.forecasts
        self.abs_errors += other.abs_errors
        self.in_band += other.in_band


def crossings(ts_ms: Sequence[int], values: Sequence[float | None], limit: float) -> list[int]:
    """Times of the readings at which the median of five readings centred on them is at or
    above ``limit`` (a single noisy count does not make a crossing): the first of each run.
    Centred, so a crossing is dated when the smoothed count reaches the line, not two readings
    before it (a median of the next five readings would date a noisy ramp's crossing about two
    readings early, and charge every forecaster of when the crowd gets there with that much).

    >>> crossings(list(range(14)), [1, 1, 1, 1, 9, 1, 1, 1, 5, 5, 5, 1, 1, 1], 4)
    [8]
    """
    out: list[int] = []
    above = False
    for i, t in enumerate(ts_ms):
        near = [v for v in values[max(i - 2, 0) : i + 3] if v is not None]
        now = bool(near) and median(near) >= limit
        if now and not above:
            out.append(t)
        above = now
    return out


def first_crossings(
    ts_ms: Sequence[int], values: Sequence[float | None], events: Iterable[Window], limit: float
) -> list[int]:
    """The first crossing of ``limit`` (see :func:`crossings`) inside each event window that
    has one."""
    out = []
    for w in events:
        inside = [i for i, t in enumerate(ts_ms) if t in w]
        if inside:
            lo, hi = inside[0], inside[-1] + 1
            out += crossings(ts_ms[lo:hi], values[lo:hi], limit)[:1]
    return out


def forecast_accuracy(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    events: Iterable[Window],
    forecaster: DensityForecaster,
    leads_min: Sequence[float] = (30.0, 15.0, 5.0),
    inflow: Sequence[float | None] | None = None,
) -> list[LeadAccuracy]:
    """How well ``forecaster`` foresaw the critical crossings inside ``events`` (given the
    gates' net ``inflow`` per reading too, if any).

    The true crossing is the first reading at which the median of the five readings centred on
    it is at or above the critical occupancy (a single noisy count does not make a crossing; see
    :func:`crossings`).
    """
    forecasts = run_forecaster(ts_ms, values, forecaster, inflow)
    limit = forecaster.critical * forecaster.area_m2
    out = [LeadAccuracy(lead) for lead in leads_min]
    for acc, crossing, i in _looks_ahead(ts_ms, values, events, limit, out):
        f = forecasts[i]
        if f.minutes_to_critical is None:
            continue
        acc.forecasts += 1
        truth = (crossing - ts_ms[i]) / MINUTE_MS
        acc.abs_errors.append(abs(f.minutes_to_critical - truth))
        if f.critical_low is not None and f.critical_low <= truth <= (f.critical_high or 0):
            acc.in_band += 1
    return out


def run_forecaster(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    forecaster: DensityForecaster,
    inflow: Sequence[float | None] | None = None,
) -> list[Forecast]:
    """``forecaster``'s forecast at each reading, fed the gates' ``inflow`` too if given.

    >>> fc = DensityForecaster(600.0, 2.0, 3.0)
    >>> len(run_forecaster([0, 60_000], [10.0, 12.0], fc, [None, 2.0]))
    2
    """
    flows = inflow if inflow is not None else [None] * len(ts_ms)
    return [forecaster.update(t, v, n) for t, v, n in zip(ts_ms, values, flows, strict=True)]


def _looks_ahead(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    events: Iterable[Window],
    limit: float,
    accs: list[LeadAccuracy],
) -> Iterable[tuple[LeadAccuracy, int, int]]:
    """For each crossing inside ``events`` and each lead: (its accuracy, the crossing, the index
    of the last reading ``lead_min`` or more before it), the accuracy's crossings counted."""
    for crossing in first_crossings(ts_ms, values, events, limit):
        for acc in accs:
            at = crossing - acc.lead_min * MINUTE_MS
            i = max((j for j, t in enumerate(ts_ms) if t <= at), default=None)
            if i is not None:
                acc.crossings += 1
                yield acc, crossing, i


def oracle_accuracy(
    series: SyntheticSeries, limit: float, leads_min: Sequence[float] = (30.0, 15.0, 5.0)
) -> list[LeadAccuracy]:
    """The noise floor of :func:`forecast_accuracy`: an oracle that knows the noise-free crowd
    ahead (``series.trend``) and today's wander (``series.ar`` now, fading with its memory, its
    expected path) foretells each crossing; what it still misses is the wander yet to come and
    the counting noise, which no forecaster can know. The crossing rule takes the median of five
    readings centred on the crossing, so the oracle looks at the crowd then.

    >>> s = synthetic_series("slow-build-up", seed=0, weeks=3)
    >>> [a.forecasts > 0 for a in oracle_accuracy(s, 1800.0)]
    [True, True, True]
    """
    ts, trend, ar = series.ts, series.trend, series.ar
    out = [LeadAccuracy(lead) for lead in leads_min]
    for acc, crossing, i in _looks_ahead(ts, series.values, series.events, limit, out):
        for j in range(i, len(ts)):
            fade = math.exp(-(ts[j] - ts[i]) / 1000.0 / AR_MEMORY_S)
            if trend[j] * math.exp(ar[i] * fade) >= limit:
                acc.forecasts += 1
                acc.abs_errors.append(abs(ts[j] - crossing) / MINUTE_MS)
                break
    return out


@dataclass(slots=True)
class ForecastAlerts:
    """Forecast alerts raised on a series with no build-up in it (the normal scenario)."""

    weeks: float = 0.0
    raised: int = 0
    false: int = 0  # raised, and no crossing of critical density followed within 30 minutes

    @property
    def false_per_week(self) -> float:
        return self.false / self.weeks if self.weeks else 0.0

    @property
    def raised_per_week(self) -> float:
        return self.raised / self.weeks if self.weeks else 0.0

    def merge(self, other: ForecastAlerts) -> None:
        self.weeks += other.weeks
        self.raised += other.raised
        self.false += other.false


def forecast_alert_times(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    forecaster: DensityForecaster,
    policy: SeriesPolicy,
    inflow: Sequence[float | None] | None = None,
) -> list[int]:
    """When the forecast alert kind, exactly as the worker runs it (``policy``: the site's
    alarm, hold and hysteresis), raised an alert over ``forecaster``'s forecasts (fed the
    gates' ``inflow`` too, if given)."""
    (kind, alarm), *_ = [(k, a) for k, a in policy.alarms if k.name == "forecast"]
    ctx = ZoneContext(policy.zone, frozenset())
    episode = Episode()
    raised: list[int] = []
    forecasts = run_forecaster(ts_ms, values, forecaster, inflow)
    for t, v, f in zip(ts_ms, values, forecasts, strict=True):
        snap = policy.snapshot(t, v, 0.0, f.minutes_to_critical)
        if kind.skipped(snap, ctx):
            continue
        transition = alarm.update(episode, t, kind.value(snap, ctx))
        if transition is not None and transition.state == "raised":
            raised.append(t)
    return raised


def forecast_alerts(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    forecaster: DensityForecaster,
    policy: SeriesPolicy,
    follow_ms: int = 30 * MINUTE_MS,
    inflow: Sequence[float | None] | None = None,
) -> ForecastAlerts:
    """How many forecast alerts were raised (:func:`forecast_alert_times`, with the gates'
    ``inflow`` if given), and how many of them no crossing of critical density (see
    :func:`crossings`) followed within ``follow_ms``. On a zone that never crosses, every
    raised alert is a false one."""
    raised = forecast_alert_times(ts_ms, values, forecaster, policy, inflow)
    crossed = crossings(ts_ms, values, forecaster.critical * forecaster.area_m2)
    false = sum(1 for r in raised if not any(r <= c <= r + follow_ms for c in crossed))
    return ForecastAlerts((ts_ms[-1] - ts_ms[0]) / WEEK_MS if ts_ms else 0.0, len(raised), false)


def alert_leads(
    ts_ms: Sequence[int],
    values: Sequence[float | None],
    events: Iterable[Window],
    forecaster: DensityForecaster,
    policy: SeriesPolicy,
    within_ms: int = 60 * MINUTE_MS,
    inflow: Sequence[float | None] | None = None,
) -> tuple[int, list[float]]:
    """The first critical crossing of each event window (see :func:`crossings`), and for those
    a forecast alert was raised before (at most ``within_ms`` before; the forecaster fed the
    gates' ``inflow`` too, if given), the minutes it came ahead of the crossing:
    (crossings, leads)."""
    raised = forecast_alert_times(ts_ms, values, forecaster, policy, inflow)
    limit = forecaster.critical * forecaster.area_m2
    n, leads = 0, []
    for crossing in first_crossings(ts_ms, values, events, limit):
        n += 1
        before = [r for r in raised if crossing - within_ms <= r <= crossing]
        if before:
            leads.append((crossing - before[0]) / MINUTE_MS)
    return n, leads
