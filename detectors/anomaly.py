"""Streaming anomaly detector for one zone's count series: is the zone behaving unlike itself?

One :class:`SeasonalAnomalyDetector` per zone. Each ``update(ts_ms, value)`` scores the value
against what the zone usually does at this hour of this weekday (local time, daylight saving
included), then learns from it; O(1) time, a fixed-size state of about 1.2 KB (``to_state``:
its learned numbers only, never its configuration), causal (a score uses data up to its own time).

How it thinks (all in time, never in number of samples, so it works for a reading every 5 s
and for hourly counts alike):

* values live on a ``log1p`` scale, so "50 % more than usual" weighs the same on a zone of 40
  and one of 40,000, and nightly zeros are an ordinary value (0), not a hole;
* the *expected* value is a seasonal profile: 168 hour-of-week bins shrunk towards 24 hour-of-day
  bins, shrunk towards a slow global level (so the detector is useful after a day and learns
  weekdays from the first week). Bins are linearly interpolated between hours, each observation
  weighs the time it represents, and bins forget exponentially by elapsed time (robust EW means
  of Huber-clipped values; Huber 1964, "Robust estimation of a location parameter");
* the *scale* is a robust EW mean absolute residual per hour of day (x 1.2533, its ratio to a
  normal sigma), floored by a Poisson-like ``1/sqrt(1 + expected)`` so that a handful of people
  at night is never a many-sigma event;
* three robust z statistics: the *point* residual (spikes, a blind camera reading zero in a busy
  hour), measured from the profile plus *today's offset* (a slow, tightly clipped EW mean of
  residuals, half-life 3 h: a rainy or busy day is not a string of spikes); the *level* (an EW
  mean of recent residuals from the profile alone: a sustained shift); and the *growth* (fast
  minus slow EW residual: rising faster than this hour usually rises). Level and growth are
  divided by their own learned typical size, which absorbs the autocorrelation of real series;
* each z has a normal tail probability (two-sided; growth one-sided); the smallest, times 4
  for the statistics looked at (Bonferroni), is mapped to ``anomaly_score = 1 - p ** (1/6)``
  (0.9 at p = 1e-6, 0.99 at 1e-12; :func:`score_from_p`): the same scale of surprise on every
  zone, so one threshold serves all. The point, level and growth look again at every reading;
  the 2-hour shift mean is a new, independent look only once per ``2 * shift_h / ln 2`` hours
  (5.8 h), so its probability is counted per such window (times ``step / 5.8 h`` at each
  reading): a slow, sustained shift at 4 sigmas of the day-to-day variation is a rare event
  for a day, though not for a single reading.

Warm-up: until ``warmup_h`` hours of data have been seen (24 by default) the score is 0.0 and
:attr:`SeasonalAnomalyDetector.warm` is False; the detector learns without clipping meanwhile.
During the first week weekday differences are still being learned and come through the
hour-of-day profile. Missing values (``None``/NaN) score ``None`` and change nothing; an outage
is reported upstream as a reading status, never guessed from a gap.
"""

from __future__ import annotations

import base64
import math
import sys
import zlib
from array import array
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000.0
WEEK_BINS = 168
DAY_BINS = 24
# Epoch day 0 (1970-01-01) was a Thursday: shift so hour-of-week 0 is Monday 00:00.
_EPOCH_WEEK_SHIFT_H = 3 * 24
# Normal distribution: sigma = sqrt(pi/2) * mean absolute deviation.
_MAD_TO_SIGMA = math.sqrt(math.pi / 2)
# Rescale the inflated forgetting weights before float32 overflows (e^88).
_MAX_INFLATION_EXP = 40.0
# Residual z clipped before it enters the short-term means: one wild reading must not hold an
# alarm for hours.
_Z_CAP = 12.0
STATE_VERSION = 3  # 2: no holiday bins; 1: base64 text arrays and the configuration
_SIZES = (WEEK_BINS, WEEK_BINS, DAY_BINS, DAY_BINS, DAY_BINS)
_HOLIDAY_SIZES = (DAY_BINS, DAY_BINS)
WEEK_H = 7 * 24.0
# Statistics the score looks at (point, level, growth, today's offset): Bonferroni's factor.
_N_TESTS = 4
# Today's offset starts at 0 with the weight of an hour of readings at a 10 % sigma.
_BIAS_PRIOR = 1.0 / 0.1**2


# Fisher 1925 / Bonferroni 1936: a statistic's two-sided normal tail probability, corrected
# for the number of statistics looked at, is the chance of this much surprise on a normal day.
def tail_log10(z: float, two_sided: bool = True) -> float:
    """log10 of the normal tail probability beyond ``z`` (two-sided: beyond ``|z|``).

    >>> round(tail_log10(1.96), 3), round(tail_log10(1.645, two_sided=False), 3)
    (-1.301, -1.301)
    >>> round(tail_log10(40.0))    # no underflow far out
    -349
    """
    x = abs(z) if two_sided else z
    u = x / math.sqrt(2.0)
    if u < 20.0:
        p = math.erfc(u) if two_sided else 0.5 * math.erfc(u)
        return math.log10(p) if p > 0.0 else -math.inf
    # erfc(u) ~ exp(-u^2) / (u sqrt(pi)) (Abramowitz & Stegun 7.1.23, first term)
    log_e = -u * u - math.log(u * math.sqrt(math.pi)) + (0.0 if two_sided else math.log(0.5))
    return log_e / math.log(10.0)


SCORE_POWER = 6.0  # score = 1 - p ** (1/6): 0.9 at p = 1e-6, 0.99 at p = 1e-12


def score_from_p(log10_p: float) -> float:
    """Map a (corrected) tail probability ``p``, given as log10, to ``1 - p ** (1/6)``.

    Under the detector's model of normal, P(score >= s) = (1 - s) ** 6: a score of 0.9 or more
    has a chance of one in a million per independent look, 0.99 one in 10^12. The mapping is
    graded all the way up (0.9999 at p = 1e-24) instead of reaching 1.0 at a few sigmas.

    >>> score_from_p(0.0), round(score_from_p(-6.0), 3), round(score_from_p(-12.0), 3)
    (0.0, 0.9, 0.99)
    """
    return 1.0 - 10.0 ** (min(log10_p, 0.0) / SCORE_POWER)


def score_from_z(z: float, n_tests: int = 1) -> float:
    """The score of one two-sided robust z among ``n_tests`` statistics looked at.

    >>> score_from_z(0.0)
    0.0
    >>> round(score_from_z(4.89), 2), round(score_from_z(4.89, n_tests=4), 2)
    (0.9, 0.87)
    """
    return score_from_p(tail_log10(z) + math.log10(n_tests))


# The score's 0.9 point: a corrected tail probability of 1e-6 (see score_from_p).
_ALARM_LOG10_P = -SCORE_POWER - math.log10(_N_TESTS)


def _z_at(log10_p: float) -> float:
    """The two-sided z whose tail probability is ``10 ** log10_p``.

    >>> round(_z_at(tail_log10(5.16)), 6)
    5.16
    """
    return -NormalDist().inv_cdf(10.0**log10_p / 2.0)


@lru_cache(maxsize=256)
def _shift_gain_cached(log10_share: float) -> float:
    return _z_at(_ALARM_LOG10_P) / _z_at(_ALARM_LOG10_P - log10_share)


def shift_gain(share: float) -> float:
    """How much a slow statistic's z is scaled, when a reading is ``share`` of one of its
    independent looks, so that it reaches the score's 0.9 point at the same false-alarm rate per
    hour as the point residual (which every reading looks at anew): where a once-per-look tail
    probability of 1e-6 x ``1 / share`` lies, scaled to where 1e-6 lies.

    >>> shift_gain(1.0), round(shift_gain(1 / 346), 2), round(shift_gain(1 / 4155), 2)
    (1.0, 1.31, 1.57)
    """
    share = min(1.0, max(share, 1e-6))  # a reading stands for a second at least: 5e-5 here
    return _shift_gain_cached(round(math.log10(share), 1))  # 0.1 decade: within 1 % of exact


@lru_cache(maxsize=8192)
def _utc_offset_h(tz: ZoneInfo, hour: int) -> float:
    """The UTC offset of ``tz`` (hours) during the UTC hour ``hour`` (hours since the epoch).

    Offsets change on whole UTC hours in nearly every zone, so one lookup per hour is exact
    there (a zone that changes at a half hour is off by its shift for that half hour).
    """
    offset = datetime.fromtimestamp(hour * 3600, tz).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0


@dataclass(frozen=True, slots=True)
class Day:
    """What the calendar says about a day, as the profile uses it (the site's calendar,
    streams/zone/calendar.py, decides; a detector given none treats every day as itself).

    * ``as_weekday``: 0 (Monday) to 6 (Sunday): the weekday whose hours describe the day (a
      public holiday: Sunday; a make-up working Saturday: a weekday); None: its own.
    * ``holiday``: a public holiday: scored against ``as_weekday``'s hours plus an offset learned
      from earlier holidays (more uncertain until a few were seen), and the weekly profile does
      not learn from it.
    * ``uplift``: the crowd expected on the day relative to its profile (a planned event, the
      Spring Festival travel rush: 1.3); the profile learns the value divided by it.
    * ``label``: what is in force, for alerts (``"National Day (public holiday)"``).
    """

    as_weekday: int | None = None
    holiday: bool = False
    uplift: float = 1.0
    label: str = ""


ORDINARY_DAY = Day()


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why the last score is what it is: the robust z statistics and the expectation."""

    z_point: float
    z_level: float
    z_growth: float
    expected: float  # in the value's own units (e.g. persons)
    scale: float  # robust sigma on the log1p scale
    z_shift: float = 0.0  # today's offset from the profile, in its typical day-to-day size

    @property
    def kind(self) -> str:
        """The dominant component: 'spike', 'drop', 'level-up', 'level-down' or 'growth'."""
        parts = {
            "point": abs(self.z_point),
            "level": abs(self.z_level),
            "shift": abs(self.z_shift),
            "growth": self.z_growth,
        }
        top = max(parts, key=parts.__getitem__)
        if top == "point":
            return "spike" if self.z_point > 0 else "drop"
        if top == "level":
            return "level-up" if self.z_level > 0 else "level-down"
        if top == "shift":
            return "level-up" if self.z_shift > 0 else "level-down"
        return "growth"


def _pack_v2(*arrays: array) -> bytes:
    """float32 little-endian, byte planes split (the exponent bytes of neighbouring bins are
    alike), then deflated: lossless, about two thirds of the raw 1,632 bytes."""
    joined = array("f")
    for a in arrays:
        joined.extend(a)
    if sys.byteorder == "big":
        joined.byteswap()
    raw = joined.tobytes()
    return zlib.compress(b"".join(raw[i::4] for i in range(4)), 1)  # ~20 µs; 9 gains ~0


def _unpack_v2(blob: bytes, sizes: tuple[int, ...] = _SIZES) -> list[array]:
    planes = zlib.decompress(blob)
    n = len(planes) // 4
    raw = bytearray(len(planes))
    for i in range(4):
        raw[i::4] = planes[i * n : (i + 1) * n]
    return _split(bytes(raw), sizes)


def _unpack(text: str) -> list[array]:
    """Version 1 arrays: the same float32 little-endian bytes as base64 text."""
    return _split(base64.b64decode(text))


def _split(raw: bytes, sizes: tuple[int, ...] = _SIZES) -> list[array]:
    joined = array("f")
    joined.frombytes(raw)
    if sys.byteorder == "big":
        joined.byteswap()
    if len(joined) != sum(sizes):
        raise ValueError(f"state arrays hold {len(joined)} values, expected {sum(sizes)}")
    out, start = [], 0
    for n in sizes:
        out.append(joined[start : start + n])
        start += n
    return out


@dataclass(frozen=True, slots=True)
class _Expectation:
    """What the profile expects at one timestamp, and where in the bins it falls."""

    expected: float  # log1p scale, everything included (holiday offset, uplift)
    profile: float  # the hour-of-week profile alone: what the profile bins learn towards
    holiday: float  # the holiday offset included in ``expected`` (0 on other days)
    scale: float  # robust sigma of one reading: its noise and the bin's spread, floored
    noise: float  # ... its noise alone (what averages out over readings)
    spread: float  # sd of the bin's own error (a weekday not seen yet): does not average out
    w0: int
    w1: int
    d0: int
    d1: int
    fw: float  # fraction of the way from bin 0 to bin 1
    inflate_w: float
    inflate_d: float
    inflate_h: float
    informed: bool  # the day profile has data behind it


class SeasonalAnomalyDetector:
    """Robust seasonal anomaly score in [0, 1] for one irregularly sampled count series.

    Parameters (times in hours unless named otherwise):

    * ``tz``: the site's time zone (a ``zoneinfo`` name or :class:`~zoneinfo.ZoneInfo`), so
      hour-of-week bins follow the local clock through daylight saving changes.
    * ``utc_offset_min``: a fixed offset instead of ``tz`` (naive timestamps read as UTC: 0).
    * ``week_half_life_h``, ``day_half_life_h``: how fast the hour-of-week and hour-of-day
      profiles (and the scale) forget, in elapsed time.
    * ``level_half_life_h``; ``growth_fast_h``/``growth_slow_h``: the short-term means.
    * ``max_step_h``: the most time one observation stands for (longer gaps are holes).
    * ``warmup_h``: hours of data before scores are emitted.
    * ``clip_k``: residuals beyond ``clip_k`` sigmas are learned as ``clip_k`` sigmas.
    * ``min_scale``: smallest robust sigma on the log1p scale (3 %: the noise of a good counter).

    A spike on day 3 of a steady daily rhythm (hourly counts) and on day 9: in the first week
    an hour of the week not seen yet might be a weekend's, so the score is more cautious:

    >>> det = SeasonalAnomalyDetector()
    >>> rhythm = lambda h: 500 + 400 * math.sin(2 * math.pi * (h % 24) / 24)
    >>> noisy = lambda h: rhythm(h) * (1 + 0.05 * ((h * 7) % 3 - 1))
    >>> scores = [det.update(int(h * HOUR_MS), noisy(h)) for h in range(72)]
    >>> det.warm, det.stage, max(scores[30:]) < 0.5
    (True, 'learning-week', True)
    >>> 0.5 < det.update(int(72 * HOUR_MS), 5 * rhythm(72)) < 0.9, det.last.kind
    (True, 'spike')
    >>> scores = [det.update(int(h * HOUR_MS), noisy(h)) for h in range(73, 8 * 24 + 12)]
    >>> det.stage, max(scores) < 0.9
    ('warm', True)
    >>> det.update(int((8 * 24 + 12) * HOUR_MS), 5 * rhythm(12)) > 0.99, det.last.kind
    (True, 'spike')
    >>> det.update(int((8 * 24 + 13) * HOUR_MS), None) is None   # missing: no score, no change
    True
    """

    __slots__ = (
        "cfg",
        "tz",
        "_hour",
        "_offset_h",
        "_lw",
        "_ld",
        "_ll",
        "_lb",
        "_lf",
        "_ls",
        "_lg",
        "mu_w",
        "g_w",
        "mu_d",
        "g_d",
        "s_d",
        "t_last",
        "t_ref",
        "seen_h",
        "level",
        "bias_num",
        "bias_den",
        "scale_g",
        "m_level",
        "w_level",
        "w2_level",
        "m_fast",
        "m_slow",
        "q_level",
        "q_growth",
        "q_shift",
        "m_shift",
        "w_shift",
        "_lsh",
        "mu_h",
        "g_h",
        "_lh",
        "_lq",
        "last",
        "_shift_window_h",
    )

    DEFAULTS: dict[str, float] = {
        "utc_offset_min": 0.0,
        "week_half_life_h": 28 * 24.0,
        "day_half_life_h": 7 * 24.0,
        "level_half_life_h": 1.0,
        "bias_half_life_h": 3.0,
        "growth_fast_h": 0.25,
        "growth_slow_h": 1.5,
        "max_step_h": 2.0,
        "warmup_h": 24.0,
        "clip_k": 3.0,
        "min_scale": 0.03,
        "day_prior_h": 0.1,  # how many hours of data a day bin needs to outweigh the global level
        "week_prior_h": 1.0,  # ... and a week bin to outweigh its hour of day
        "holiday_prior_h": 2.0,  # ... and a holiday bin to outweigh "like its as_weekday"
        "holiday_half_life_h": 2 * 365 * 24.0,  # holidays are rare: remember them for years
        # Uncertainty of a bin not seen yet (log scale; it fades as the bin gets its first
        # ``spread_h`` hours of data): an hour of week may be a weekend (week), an hour of day
        # anything (day), a holiday quieter or busier than the Sunday it borrows (holiday).
        "spread_h": 0.25,
        "week_spread": 0.35,
        "day_spread": 1.0,
        "holiday_spread": 0.5,
        "shift_h": 2.0,  # half-life of the shift mean (residual from the profile, log scale)
        "shift_memory_h": WEEK_H,  # memory of its typical size on normal days
    }

    def __init__(self, tz: str | ZoneInfo | None = None, **params: float) -> None:
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"unknown parameters: {sorted(unknown)}")
        self.cfg = {**self.DEFAULTS, **{k: float(v) for k, v in params.items()}}
        c = self.cfg
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        # The offset of the UTC hour seen last: readings come in time order, so one lookup
        # per hour and per batch (the lookups themselves are cached across detectors).
        self._hour, self._offset_h = None, c["utc_offset_min"] / 60.0
        ln2 = math.log(2.0)
        # Forgetting rates per hour (ln 2 / half-life).
        self._lw = ln2 / c["week_half_life_h"]
        self._ld = ln2 / c["day_half_life_h"]
        self._ll = ln2 / c["level_half_life_h"]
        self._lb = ln2 / c["bias_half_life_h"]
        self._lf = ln2 / c["growth_fast_h"]
        self._ls = ln2 / c["growth_slow_h"]
        self._lg = ln2 / 24.0  # global level and the typical sizes of level/growth: a day
        self._lh = ln2 / c["holiday_half_life_h"]
        self._lq = ln2 / c["shift_memory_h"]
        self._lsh = ln2 / c["shift_h"]
        # An EW mean of white noise with time constant tau = half-life / ln 2 has the variance
        # of a plain mean of 2 * tau of it: one independent look at a shift per 2 * tau hours.
        self._shift_window_h = 2.0 * c["shift_h"] / ln2
        # Profiles: EW means with forgetting weights inflated by exp(rate * (t - t_ref)), so
        # forgetting by elapsed time needs no per-bin clock (rescaled now and then).
        self.mu_w = array("f", bytes(4 * WEEK_BINS))
        self.g_w = array("f", bytes(4 * WEEK_BINS))
        self.mu_d = array("f", bytes(4 * DAY_BINS))
        self.g_d = array("f", bytes(4 * DAY_BINS))
        self.s_d = array("f", bytes(4 * DAY_BINS))
        self.t_last: float | None = None  # hours since epoch of the newest observation
        self.t_ref = 0.0
        self.seen_h = 0.0
        self.level = 0.0
        # Today's offset from the profile (weather, a busy day), log scale: a precision-weighted
        # forgetting mean, so the busy hours, whose residuals mean something, set it.
        self.bias_num = 0.0
        self.bias_den = 0.0
        self.scale_g = 0.3  # prior: 30 % on the log scale until the hours of day are known
        self.m_level = 0.0
        self.w_level = 0.0  # forgetting sums of the level mean's weights and squared weights
        self.w2_level = 0.0
        self.m_fast = 0.0
        self.m_slow = 0.0
        # Typical |level| and |growth| of a normal series (z units); priors, then learned.
        self.q_level = 1.0
        self.q_growth = 0.6
        # A sustained shift: a 2-hour mean of the residual from the profile (log scale), and its
        # typical size on normal days (10 % until learned: weather, trains, the day's mood).
        self.m_shift = 0.0
        self.w_shift = 0.0  # its forgetting sum of precisions
        self.q_shift = 0.1
        # Holidays: per hour of day, the learned offset from the borrowed weekday's profile.
        self.mu_h = array("f", bytes(4 * DAY_BINS))
        self.g_h = array("f", bytes(4 * DAY_BINS))
        self.last: Explanation | None = None

    @property
    def warm(self) -> bool:
        """True once ``warmup_h`` hours of data have been seen and scores are emitted."""
        return self.seen_h >= self.cfg["warmup_h"]

    @property
    def stage(self) -> str:
        """``"learning-day"`` (no scores yet), ``"learning-week"`` (scored against the hours of
        day, the weekdays still being learned, with the uncertainty that leaves) or ``"warm"``.

        >>> det = SeasonalAnomalyDetector()
        >>> det.stage
        'learning-day'
        >>> for h in range(30):
        ...     _ = det.update(h * 3_600_000, 100)
        >>> det.stage
        'learning-week'
        """
        if not self.warm:
            return "learning-day"
        return "learning-week" if self.seen_h < WEEK_H else "warm"

    @property
    def bias(self) -> float:
        """Today's offset from the profile on the log scale, shrunk to 0 on little evidence."""
        return self.bias_num / (self.bias_den + _BIAS_PRIOR)

    def hour_of_week(self, ts_ms: int | float) -> float:
        """Local hours since Monday 00:00 at ``ts_ms`` (epoch ms): where the profile looks.

        08:00 in London is 08:00 UTC in winter and 07:00 UTC in summer; both land in bin 8:

        >>> from datetime import UTC
        >>> det = SeasonalAnomalyDetector(tz="Europe/London")
        >>> winter = datetime(2025, 1, 15, 8, tzinfo=UTC).timestamp() * 1000
        >>> summer = datetime(2025, 7, 15, 7, tzinfo=UTC).timestamp() * 1000
        >>> det.hour_of_week(winter) % 24, det.hour_of_week(summer) % 24
        (8.0, 8.0)
        >>> SeasonalAnomalyDetector(utc_offset_min=60).hour_of_week(winter) % 24
        9.0
        """
        t = ts_ms / HOUR_MS
        if self.tz is not None:
            hour = math.floor(t)
            if hour != self._hour:
                self._hour, self._offset_h = hour, _utc_offset_h(self.tz, hour)
        return (t + self._offset_h + _EPOCH_WEEK_SHIFT_H) % WEEK_BINS

    # -- the streaming interface -------------------------------------------------------------

    def update(
        self, ts_ms: int | float, value: float | None, day: Day = ORDINARY_DAY
    ) -> float | None:
        """Score ``value`` at ``ts_ms`` (epoch ms) on ``day``, then learn from it; ``None`` when
        missing."""
        if value is None or not math.isfinite(value):  # None, NaN, inf: a hole, not a zero
            return None
        dt = self._advance(ts_ms / HOUR_MS)
        y = math.log1p(max(float(value), 0.0))
        at = self._expectation(ts_ms, day)
        r = y - at.expected
        # The point residual is taken from the profile plus today's offset, so a busy day is
        # not a string of spikes; level and growth keep the profile alone as their reference.
        bias = self.bias
        r_today = r - bias
        z = r_today / at.scale
        # Short-term means of the residual z, by elapsed time (one second at least, so a burst
        # of readings with one timestamp still moves them).
        step = max(dt, 1.0 / 3600.0)
        w = min(step, self.cfg["max_step_h"])  # the time one observation stands for, capped
        # The level is measured from today's offset too: a sudden change shows within the
        # hour, and a sustained one is told by the shift, which decays as the profile learns
        # the new level (a score not pinned at 1 for days). A bin's spread is an error common
        # to all its readings: it does not average out in the means.
        level_iid, growth = self._short_term(r_today / at.noise, step, w)
        n_eff = self.w_level * self.w_level / self.w2_level
        z_level = level_iid / math.sqrt(
            (_MAD_TO_SIGMA * self.q_level) ** 2 + n_eff * (at.spread / at.noise) ** 2
        )
        shift = self._shift(r, at.noise, step, w)
        z_shift = shift / math.hypot(_MAD_TO_SIGMA * self.q_shift, at.spread)
        # With readings sparser than the fast window, "fast minus slow" is just the newest
        # point again (counted twice); growth then says less the sparser the series is.
        sparse = min(1.0, self.cfg["growth_fast_h"] / dt) if dt > 0.0 else 1.0
        z_growth = sparse * growth / (_MAD_TO_SIGMA * self.q_growth)
        warm = self.warm
        score = 0.0
        if warm:
            if self.seen_h >= WEEK_H:  # in the first week a shift may be a weekday not seen yet
                z_shift *= shift_gain(w / self._shift_window_h)
            log10_p = min(
                tail_log10(z), tail_log10(z_level), tail_log10(z_shift),
                tail_log10(z_growth, two_sided=False),
            )  # fmt: skip
            score = score_from_p(log10_p + math.log10(_N_TESTS))
        self.last = Explanation(
            z, z_level, z_growth, math.expm1(at.expected + bias), at.scale, z_shift
        )
        self._learn(at, r, r_today, bias, step, w, warm, day.holiday)
        self._learn_typical_sizes(level_iid, growth, shift, w, warm and at.informed)
        self.seen_h += w
        if self._ld * (self.t_last - self.t_ref) > _MAX_INFLATION_EXP:
            self._rebase()
        return score

    def _advance(self, t: float) -> float:
        """Move the clock to ``t`` (hours); the elapsed time. Late readings are scored and
        learned at the current clock: time never runs back."""
        if self.t_last is None:
            self.t_last = t
            self.t_ref = t
        dt = max(t - self.t_last, 0.0)
        self.t_last = max(t, self.t_last)
        if self._ld * (self.t_last - self.t_ref) > _MAX_INFLATION_EXP:
            self._rebase()  # a long gap: fold the forgetting in now, before it overflows
        return dt

    def _expectation(self, ts_ms: int | float, day: Day = ORDINARY_DAY) -> _Expectation:
        """Expected log1p value and robust scale at ``ts_ms``: hour-of-week bins shrunk to
        hour-of-day bins shrunk to the global level, interpolated between hours; on a holiday
        plus its learned offset, times the day's uplift. A bin shrunk to its parent leaves the
        uncertainty of what it has not seen yet (its ``*_spread`` times the prior's share)."""
        c = self.cfg
        wpos = self.hour_of_week(ts_ms)
        if day.as_weekday is not None:
            wpos = day.as_weekday * DAY_BINS + wpos % DAY_BINS
        w0 = int(wpos)
        fw = wpos - w0
        w1 = (w0 + 1) % WEEK_BINS
        d0 = w0 % DAY_BINS
        d1 = (d0 + 1) % DAY_BINS
        inflate_w = math.exp(self._lw * (self.t_last - self.t_ref))
        inflate_d = math.exp(self._ld * (self.t_last - self.t_ref))
        gd0 = (1.0 - fw) * self.g_d[d0] / inflate_d  # effective hours of data behind each bin
        gd1 = fw * self.g_d[d1] / inflate_d
        gw0 = (1.0 - fw) * self.g_w[w0] / inflate_w
        gw1 = fw * self.g_w[w1] / inflate_w
        kd, kw = c["day_prior_h"], c["week_prior_h"]
        e_day = (gd0 * self.mu_d[d0] + gd1 * self.mu_d[d1] + kd * self.level) / (gd0 + gd1 + kd)
        profile = (gw0 * self.mu_w[w0] + gw1 * self.mu_w[w1] + kw * e_day) / (gw0 + gw1 + kw)
        s_day = (gd0 * self.s_d[d0] + gd1 * self.s_d[d1] + kd * self.scale_g) / (gd0 + gd1 + kd)
        ks = c["spread_h"]
        spread2 = (c["week_spread"] * ks / (gw0 + gw1 + ks)) ** 2 + (
            c["day_spread"] * ks / (gd0 + gd1 + ks)
        ) ** 2
        inflate_h = math.exp(self._lh * (self.t_last - self.t_ref))
        holiday = 0.0
        if day.holiday:
            gh0 = (1.0 - fw) * self.g_h[d0] / inflate_h
            gh1 = fw * self.g_h[d1] / inflate_h
            kh = c["holiday_prior_h"]
            holiday = (gh0 * self.mu_h[d0] + gh1 * self.mu_h[d1]) / (gh0 + gh1 + kh)
            spread2 += (c["holiday_spread"] * kh / (gh0 + gh1 + kh)) ** 2  # rare: fades slowly
        expected = profile + holiday + math.log(max(day.uplift, 1e-6))
        # Poisson-like floor: sd of log1p(N) for a count N of mean E is about 1/sqrt(1 + E).
        floor = max(c["min_scale"], 1.0 / math.sqrt(1.0 + math.expm1(max(expected, 0.0))))
        noise = max(s_day, floor)
        return _Expectation(
            expected, profile, holiday, math.sqrt(noise * noise + spread2), noise,
            math.sqrt(spread2), w0, w1, d0, d1, fw, inflate_w, inflate_d, inflate_h,
            informed=gd0 + gd1 >= kd,
        )  # fmt: skip

    def _short_term(self, z_seasonal: float, step: float, w: float) -> tuple[float, float]:
        """Update the level and growth means of the clipped residual z; (level, growth).

        The level is a time-weighted mean of recent z, standardised as if they were
        independent (so one reading after a long gap is no stronger than itself), then divided
        (by the caller) by its learned typical size, which absorbs how correlated they are.
        """
        zc = max(-_Z_CAP, min(_Z_CAP, z_seasonal))
        keep = math.exp(-self._ll * step)
        self.w_level = self.w_level * keep + w
        self.w2_level = self.w2_level * keep * keep + w * w
        self.m_level += w / self.w_level * (zc - self.m_level)
        level_iid = self.m_level * self.w_level / math.sqrt(self.w2_level)
        self.m_fast += (1.0 - math.exp(-self._lf * step)) * (zc - self.m_fast)
        self.m_slow += (1.0 - math.exp(-self._ls * step)) * (zc - self.m_slow)
        return level_iid, self.m_fast - self.m_slow

    def _learn(
        self,
        at: _Expectation,
        r: float,
        r_today: float,
        bias: float,
        step: float,
        w: float,
        warm: bool,
        holiday: bool = False,
    ) -> None:
        """Learn the profiles, today's offset, the level and the scale from one residual (on a
        holiday: the holiday offsets and today's offset only)."""
        k, scale = self.cfg["clip_k"], at.scale
        rc = max(-k * scale, min(k * scale, r)) if warm else r
        self._learn_bias(at, r_today, bias, step, w, warm)
        # A holiday teaches its own offsets, once there is a profile to be offset from (a
        # detector started on a holiday learns the profile from it, as from any day).
        if holiday and warm and at.informed:
            target = at.holiday + rc
            wi_h = w * at.inflate_h
            for b, share in ((at.d0, 1.0 - at.fw), (at.d1, at.fw)):
                if share > 0.0:
                    self.g_h[b] += share * wi_h
                    self.mu_h[b] += share * wi_h / self.g_h[b] * (target - self.mu_h[b])
            return
        target = at.profile + rc  # an uplifted day teaches the profile its value / uplift
        wi_w, wi_d = w * at.inflate_w, w * at.inflate_d
        for b, share in ((at.w0, 1.0 - at.fw), (at.w1, at.fw)):
            if share > 0.0:
                self.g_w[b] += share * wi_w
                self.mu_w[b] += share * wi_w / self.g_w[b] * (target - self.mu_w[b])
        abs_dev = _MAD_TO_SIGMA * min(abs(r_today), k * scale)
        for b, share in ((at.d0, 1.0 - at.fw), (at.d1, at.fw)):
            if share > 0.0:
                prev = self.g_d[b]
                self.g_d[b] += share * wi_d
                lr = share * wi_d / self.g_d[b]
                self.mu_d[b] += lr * (target - self.mu_d[b])
                if at.informed:  # a residual against a profile still empty says nothing
                    self.s_d[b] += (lr if prev > 0 else 1.0) * (abs_dev - self.s_d[b])
        a_day = 1.0 - math.exp(-self._lg * w)
        self.level += (a_day if self.seen_h > 0 else 1.0) * (target - self.level)
        if at.informed:
            self.scale_g += a_day * (abs_dev - self.scale_g)

    def _learn_bias(
        self, at: _Expectation, r_today: float, bias: float, step: float, w: float, warm: bool
    ) -> None:
        """Today's offset follows the day, not an event: residuals enter it clipped at one
        sigma."""
        scale = at.scale
        keep_bias = math.exp(-self._lb * step)
        self.bias_num *= keep_bias
        self.bias_den *= keep_bias
        if warm and at.informed:  # before, residuals measure the empty profile, not the day
            precision = w / (scale * scale)
            self.bias_num += precision * (bias + max(-scale, min(scale, r_today)))
            self.bias_den += precision

    def _shift(self, r: float, noise: float, step: float, w: float) -> float:
        """Update the shift mean of the residual from the profile; its new value.

        Precision-weighted (a reading of 20 people at night says little about the day's level,
        one of 2000 at the peak a lot), forgetting by elapsed time; each reading pulls it by at
        most two noise sigmas (one wild reading is not a shift)."""
        precision = w / (noise * noise)
        self.w_shift = self.w_shift * math.exp(-self._lsh * step) + precision
        lim = 2.0 * noise
        self.m_shift += precision / self.w_shift * max(-lim, min(lim, r - self.m_shift))
        return self.m_shift

    def _learn_typical_sizes(
        self, level_iid: float, growth: float, shift: float, w: float, warm: bool
    ) -> None:
        """The typical |level|, |growth| and |shift| of normal data, which divide them into z
        statistics."""
        if not warm:
            return
        k = self.cfg["clip_k"]
        a_week = 1.0 - math.exp(-self._lq * w)
        self.q_shift += a_week * (min(abs(shift), k * self.q_shift) - self.q_shift)
        self.q_shift = max(self.q_shift, self.cfg["min_scale"])

        a_day = 1.0 - math.exp(-self._lg * w)
        self.q_level += a_day * (min(abs(level_iid), k * self.q_level) - self.q_level)
        self.q_growth += a_day * (min(abs(growth), k * self.q_growth) - self.q_growth)
        self.q_level = max(self.q_level, 1.0 / _MAD_TO_SIGMA)  # never above the point z
        self.q_growth = max(self.q_growth, 0.2)

    def _rebase(self) -> None:
        """Fold the forgetting accumulated since ``t_ref`` into the weights (amortised O(1))."""
        dt = self.t_last - self.t_ref
        fw, fd = math.exp(-self._lw * dt), math.exp(-self._ld * dt)
        fh = math.exp(-self._lh * dt)
        for i in range(WEEK_BINS):
            self.g_w[i] *= fw
        for i in range(DAY_BINS):
            self.g_d[i] *= fd
            self.g_h[i] *= fh
        self.t_ref = self.t_last

    # -- state ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Compact state (about 1.2 KB packed; arrays as bytes): resume with :meth:`from_state`.

        Only what was learned is kept; the configuration (time zone, half-lives) comes from
        whoever builds the detector, so a changed setting takes effect on a restored detector.

        >>> det = SeasonalAnomalyDetector(tz="Asia/Shanghai")
        >>> for h in range(30):
        ...     _ = det.update(h * 3_600_000, 100 + h)
        >>> again = SeasonalAnomalyDetector.from_state(det.to_state(), tz="Asia/Shanghai")
        >>> again.update(30 * 3_600_000, 500) == det.update(30 * 3_600_000, 500)
        True
        >>> len(det.to_state()["a"]) < 1632   # 408 float32, packed
        True
        """
        return {
            "v": STATE_VERSION,
            "t": self.t_last,
            "tr": self.t_ref,
            "n": self.seen_h,
            "lv": self.level,
            "b": [self.bias_num, self.bias_den],
            "sg": self.scale_g,
            "m": [
                self.m_level,
                self.w_level,
                self.w2_level,
                self.m_fast,
                self.m_slow,
                self.m_shift,
                self.w_shift,
            ],
            "q": [self.q_level, self.q_growth, self.q_shift],
            "a": _pack_v2(self.mu_w, self.g_w, self.mu_d, self.g_d, self.s_d),
            "h": _pack_v2(self.mu_h, self.g_h),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], tz: str | ZoneInfo | None = None, **params: float
    ) -> SeasonalAnomalyDetector:
        """Rebuild a detector from :meth:`to_state` output with the given configuration.

        Version 2 states (no holidays learned yet) and version 1 states (base64 arrays and a
        ``cfg``, which is ignored: the configuration is the caller's) are read too.
        """
        version = state.get("v")
        if version in (2, STATE_VERSION):
            arrays = _unpack_v2(state["a"])
        elif version == 1:
            arrays = _unpack(state["a"])
        else:
            raise ValueError(f"unknown anomaly state version {version!r}")
        det = cls(tz, **params)
        det.mu_w, det.g_w, det.mu_d, det.g_d, det.s_d = arrays
        det.t_last, det.t_ref, det.seen_h = state["t"], state["tr"], state["n"]
        det.level, det.scale_g = state["lv"], state["sg"]
        det.bias_num, det.bias_den = state["b"]
        det.m_level, det.w_level, det.w2_level, det.m_fast, det.m_slow = state["m"][:5]
        det.q_level, det.q_growth = state["q"][:2]
        if version == STATE_VERSION:
            det.q_shift = state["q"][2]
            det.m_shift, det.w_shift = state["m"][5:7]
            det.mu_h, det.g_h = _unpack_v2(state["h"], _HOLIDAY_SIZES)
        return det
