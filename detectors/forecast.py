"""Minutes until a zone reaches its warning and critical densities, with a band of uncertainty.

One :class:`DensityForecaster` per zone. Local regressions of occupancy on time with exponential
forgetting by elapsed time (discounted least squares of a second-order
polynomial, Brown, "Smoothing, Forecasting and Prediction", 1963, ch. 9), each ten running sums
re-centred on the newest reading: O(1) per update, a few numbers of state. A short memory (6
min) gives the level and rate now, without the lag of a straight line through the last quarter
of an hour; a longer one (10 min) gives the acceleration, which a few minutes cannot tell from
noise (20 min, as before, still remembered the flat crowd before a build-up and saw a third of
its acceleration); a 1.5-minute straight line says whether the crowd is falling now, and takes
over at a turn sharper than the short memory (a crowd that stopped rising, a queue released).
The path ahead is damped (Gardner & McKenzie 1985): the rate fades with a 2-hour half-life and
the acceleration with a 1-hour one, so a steady rate is not extrapolated for ever; what keeps a
crowd's wander from being extrapolated is that the rate must be 5 standard errors above zero.
Where gates report it, the net inflow (entered - exited) is a second, independent view: a
discounted straight line through the gates' rates gives the rate now and the acceleration (no
lag under acceleration, unlike a mean of the inflow), each weighed against the cameras' by the
inverse of its variance.

What the forecast claims (the operator reads it as such):

* 0.0 minutes: the newest reading is at or over the threshold ("already there"), whatever the
  trend says; never 0.0 while the newest reading is below it;
* ``None``: not heading there: the rate now is not clearly above zero (flat or falling: moving
  away, or too noisy to say), the damped path levels off below the line, or the crossing lies
  beyond ``horizon_min``;
* otherwise minutes > 0 to the crossing, with a band calibrated on synthetic build-ups.

Thresholds are the zone's, from the site file (never defaulted here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MINUTE_MS = 60_000.0
MIN_SPAN_MIN = 3.0
JUMP_BACK_MIN = 5.0  # a reading this much older than the newest starts a new trend
RECENT_MIN = 1.5  # half-life of the "moving away now?" check
BREAK_Z = 3.0  # the last minutes' level or rate this many standard errors off the curve: a turn
# Gates silent this many half-lives (of the level and rate): their line is dropped, not
# extrapolated (an offline gate's last slope, carried on, would veto every forecast).
GATE_SILENT_HALF_LIVES = 2.0
# 3: the quadratic (ten sums and the newest reading; since the gates' line, an optional "g" with
# its sums, count, last report and pending inflow: states without it, or with its first 5-sum
# form, resume with the line started anew); 2: a straight
# line (seven sums); 1: also the configuration. Older states cannot be resumed (no sums of t³,
# t⁴, t²y): from_state raises.
STATE_VERSION = 3


@dataclass(frozen=True, slots=True)
class Forecast:
    """One forecast: densities in persons/m², rates in persons/m²/min, times in minutes.

    ``*_low``/``*_high`` bound the minutes (soonest and latest plausible crossing); all three are
    ``None`` when the zone is not heading to that threshold, and 0.0 when it is already there.
    """

    density: float | None = None
    rate: float | None = None
    minutes_to_warning: float | None = None
    warning_low: float | None = None
    warning_high: float | None = None
    minutes_to_critical: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None


def crossing_minutes(gap: float, rate: float, accel: float) -> float | None:
    """Minutes until ``gap`` is covered from ``rate`` with constant ``accel`` (per min²), or
    ``None`` if never: the positive root of ``accel/2 m² + rate m = gap`` (Newton's kinematics).

    >>> crossing_minutes(100.0, 10.0, 0.0), crossing_minutes(100.0, 0.0, 2.0)
    (10.0, 10.0)
    >>> crossing_minutes(100.0, 10.0, -1.0) is None   # it stops short: 50 at most
    True
    """
    disc = rate * rate + 2.0 * accel * gap
    if disc < 0.0 or rate + math.sqrt(disc) <= 0.0:
        return None
    return 2.0 * gap / (rate + math.sqrt(disc))


def damped_path(accel_half_life: float, minutes: float) -> float:
    """Effective ``m²/2`` of an acceleration that fades with ``accel_half_life`` (minutes):
    ``∫₀ᵐ ∫₀ˢ e^(-λu) du ds`` (Gardner & McKenzie 1985's damping, in continuous time).

    >>> round(damped_path(1e9, 10.0), 3), round(damped_path(10.0, 10.0), 1)
    (50.0, 40.2)
    """
    lam = math.log(2.0) / accel_half_life
    x = lam * minutes
    if x < 1e-6:
        return 0.5 * minutes * minutes
    return (x - 1.0 + math.exp(-x)) / (lam * lam)


class DiscountedQuadratic:
    """A quadratic fitted to readings by discounted least squares (Brown 1963, ch. 9): ten
    running sums over readings with time measured from the newest, forgotten by elapsed time.

    >>> q = DiscountedQuadratic()
    >>> for m in range(31):
    ...     q.advance(1.0 if m else 0.0, 0.9)
    ...     q.add(100.0 + m * m)
    >>> [round(x, 6) for x in q.fit()[0]]   # level, rate, acceleration at the newest reading
    [1000.0, 60.0, 2.0]
    """

    __slots__ = ("s",)

    def __init__(self, sums: list[float] | None = None) -> None:
        # sum w, w t, w t², w t³, w t⁴, w y, w t y, w t² y, w y², w².
        self.s = list(sums) if sums is not None else [0.0] * 10

    def advance(self, d: float, keep: float) -> None:
        """Move the time origin ``d`` minutes on (t_i -> t_i - d, binomial expansion), then
        weigh every reading by ``keep``."""
        s0, s1, s2, s3, s4, sy, sty, st2y, syy, sw2 = self.s
        d2 = d * d
        self.s = [
            s0 * keep,
            (s1 - d * s0) * keep,
            (s2 - 2 * d * s1 + d2 * s0) * keep,
            (s3 - 3 * d * s2 + 3 * d2 * s1 - d2 * d * s0) * keep,
            (s4 - 4 * d * s3 + 6 * d2 * s2 - 4 * d2 * d * s1 + d2 * d2 * s0) * keep,
            sy * keep,
            (sty - d * sy) * keep,
            (st2y - 2 * d * sty + d2 * sy) * keep,
            syy * keep,
            sw2 * keep * keep,
        ]

    def middle(self) -> float:
        """Weighted mean time of the readings (minutes, negative: before the newest)."""
        return self.s[1] / self.s[0] if self.s[0] > 0.0 else 0.0

    def add(self, y: float) -> None:
        """A reading at the time origin (the newest reading's time)."""
        s = self.s
        s[0] += 1.0
        s[5] += y
        s[8] += y * y
        s[9] += 1.0

    def fit(self, degree: int = 2) -> tuple[list[float], list[list[float]], float] | None:
        """Level, rate and acceleration at the time origin, their covariance and the residual
        variance (``degree=1``: a straight line, acceleration 0); ``None`` while the readings
        span less than ``MIN_SPAN_MIN`` minutes (for evenly spaced readings over a span S the
        time spread is S / sqrt(12): a few seconds of data after a start would otherwise turn
        camera noise into a steep curve)."""
        s0, s1, s2, s3, s4, sy, sty, st2y, syy, sw2 = self.s
        if s0 <= 0.0:
            return None
        n_eff = s0 * s0 / sw2
        if n_eff < 2.0 + degree or s2 / s0 - (s1 / s0) ** 2 < MIN_SPAN_MIN**2 / 12.0:
            return None
        if degree == 2:
            inv = _inverse3(((s0, s1, s2), (s1, s2, s3), (s2, s3, s4)))
        else:  # the 2×2 normal equations, padded: no t² term
            inv = _inverse3(((s0, s1, 0.0), (s1, s2, 0.0), (0.0, 0.0, 1.0)))
        if inv is None:
            return None
        # Written out rather than as comprehensions (this runs three times per reading), with
        # the same operations in the same order as ``sum(inv[i][j] * b[j] for j in range(3))``
        # and ``scale * inv[i][j] * k[i] * k[j]``: the same floats to the last bit.
        (i00, i01, i02), (i10, i11, i12), (i20, i21, i22) = inv
        b2 = st2y if degree == 2 else 0.0
        c0 = 0.0 + i00 * sy + i01 * sty + i02 * b2
        c1 = 0.0 + i10 * sy + i11 * sty + i12 * b2
        c2 = 0.0 + i20 * sy + i21 * sty + i22 * b2
        resid_var = max(syy - (0.0 + c0 * sy + c1 * sty + c2 * b2), 0.0) / s0
        resid_var *= n_eff / max(n_eff - 1.0 - degree, 1.0)
        # Weighted least squares: Cov ≈ σ² M⁻¹ Σw² / Σw for slowly varying weights; the
        # acceleration is twice the t² coefficient.
        scale = resid_var * sw2 / s0
        k2 = 2.0 if degree == 2 else 0.0
        cov = [
            [scale * i00 * 1.0 * 1.0, scale * i01 * 1.0 * 1.0, scale * i02 * 1.0 * k2],
            [scale * i10 * 1.0 * 1.0, scale * i11 * 1.0 * 1.0, scale * i12 * 1.0 * k2],
            [scale * i20 * k2 * 1.0, scale * i21 * k2 * 1.0, scale * i22 * k2 * k2],
        ]
        return [c0, c1, 2.0 * c2 if degree == 2 else 0.0], cov, resid_var


class DiscountedLine:
    """A straight line fitted to rates by discounted weighted least squares (Brown 1963, ch. 9,
    with precision weights): eight running sums, time measured from the newest rate. A rate
    over ``w`` minutes of counts weighs ``w`` (its variance falls as 1 / minutes), and the
    residuals estimate the variance of one minute's rate whatever the reading interval.

    >>> g = DiscountedLine()
    >>> for m in range(31):
    ...     g.advance(1.0 if m else 0.0, 0.9)
    ...     g.add(10.0 + 0.5 * m, 1.0)
    >>> [round(x, 6) for x in g.fit()[::2]]   # rate now, its slope (the acceleration)
    [25.0, 0.5]
    """

    __slots__ = ("s",)

    def __init__(self, sums: list[float] | None = None) -> None:
        # sum w, w t, w t², w y, w t y, w y², Σw discounted twice (the weights' own sum, for
        # the variance of the sums) and the rates' count (for the variance of one rate).
        self.s = list(sums) if sums is not None else [0.0] * 8

    def advance(self, d: float, keep: float) -> None:
        """Move the time origin ``d`` minutes on and weigh every rate by ``keep``."""
        s0, s1, s2, sy, sty, syy, sw, k = self.s
        self.s = [
            s0 * keep,
            (s1 - d * s0) * keep,
            (s2 - 2 * d * s1 + d * d * s0) * keep,
            sy * keep,
            (sty - d * sy) * keep,
            syy * keep,
            sw * keep * keep,
            k * keep,
        ]

    def add(self, y: float, w: float) -> None:
        s = self.s
        s[0] += w
        s[3] += w * y
        s[5] += w * y * y
        s[6] += w  # precision weights: Var(Σ w y) ∝ Σ w, not Σ w²
        s[7] += 1.0

    def fit(self) -> tuple[float, float, float, float] | None:
        """Level (the rate now), its variance, slope and its variance; ``None`` while the rates
        span less than ``MIN_SPAN_MIN`` minutes (as :meth:`DiscountedQuadratic.fit`)."""
        s0, s1, s2, sy, sty, syy, sw, k = self.s
        if s0 <= 0.0 or sw <= 0.0:
            return None
        n_eff = s0 * s0 / sw
        det = s0 * s2 - s1 * s1
        if n_eff < 3.0 or k < 3.0 or det < s0 * s0 * MIN_SPAN_MIN**2 / 12.0:
            return None
        slope = (s0 * sty - s1 * sy) / det
        level = (sy - slope * s1) / s0
        # Var(rate of w minutes) = σ² / w: the weighted residuals sum to about σ² per rate, so
        # σ² (a minute's) is their sum over the rates' count, not over their minutes.
        resid_var = max(syy - level * sy - slope * sty, 0.0) / (k - 2.0)
        scale = resid_var * sw / s0
        return level, scale * s2 / det, slope, scale * s0 / det


class DensityForecaster:
    """Time to warning/critical density from the occupancy trend and optional gate net inflow.

    * ``area_m2``: the zone's walkable area; ``warning``/``critical``: densities in persons/m².
    * ``half_life_min``: memory of the level and rate; ``accel_memory_min``: of the
      acceleration. Both stretch with the sampling step when readings are sparser (3 and 6
      steps), so hourly counts and 5-second readings both give a curve through several points.
    * ``horizon_min``: a crossing further away than this is reported as ``None``.
    * ``band_z``: width of the band in standard errors of the path at the crossing (1.645 would
      be 90 % for independent errors; 3.3 covers 90 % of the synthetic build-ups' crossings,
      seeds 100-139 of ``crowdsafe evaluate``'s scenarios, whose errors are autocorrelated);
      ``band_growth_min``: the band widens by ``1 + minutes / band_growth_min`` with the
      horizon (the rate and acceleration themselves change; 25 min on the same seeds).
    * ``trend_half_life_min``/``accel_half_life_min``: how fast the rate and the acceleration
      now are assumed to fade ahead (damping).
    * ``min_t``: the rate now must be this many standard errors above zero to forecast at all.

    A zone of 1000 m² filling by 20 people a minute from 1000 people: a straight line would
    reach 2 p/m² in 20 min; the damped path, which does not assume the rate lasts, says 21, and
    never reaches 6 p/m² (4400 more people: more than the rate carries before it fades):

    >>> f = DensityForecaster(area_m2=1000, warning=2.0, critical=6.0)
    >>> for minute in range(0, 31):
    ...     out = f.update(minute * 60_000, 1000 + 20 * minute)
    >>> round(out.density, 2), round(out.minutes_to_warning), out.minutes_to_critical
    (1.6, 21, None)
    >>> for minute in range(31, 41):   # it empties again: moving away, no countdown
    ...     out = f.update(minute * 60_000, 1600 - 30 * (minute - 30))
    >>> out.minutes_to_warning is None and out.minutes_to_critical is None
    True
    >>> f.update(41 * 60_000, 2100).minutes_to_warning   # a reading over warning: there now
    0.0
    """

    __slots__ = (
        "area_m2",
        "warning",
        "critical",
        "half_life_min",
        "horizon_min",
        "band_z",
        "accel_half_life_min",
        "trend_half_life_min",
        "min_t",
        "accel_memory_min",
        "band_growth_min",
        "t_last",
        "step",
        "y_last",
        "recent",
        "short",
        "long",
        "gate",
        "t_gate",
        "gate_pending",
    )

    def __init__(
        self,
        area_m2: float,
        warning: float,
        critical: float,
        half_life_min: float = 6.0,
        horizon_min: float = 120.0,
        band_z: float = 3.3,
        accel_half_life_min: float = 60.0,
        trend_half_life_min: float = 120.0,
        min_t: float = 5.0,
        accel_memory_min: float = 10.0,
        band_growth_min: float = 25.0,
    ) -> None:
        if area_m2 <= 0:
            raise ValueError(f"area must be > 0 m², got {area_m2}")
        if not 0 < warning <= critical:
            raise ValueError(f"need 0 < warning <= critical, got {warning}, {critical}")
        self.area_m2 = float(area_m2)
        self.warning = float(warning)
        self.critical = float(critical)
        self.half_life_min = float(half_life_min)
        self.horizon_min = float(horizon_min)
        self.band_z = float(band_z)
        self.accel_half_life_min = float(accel_half_life_min)
        self.trend_half_life_min = float(trend_half_life_min)
        self.min_t = float(min_t)
        self.accel_memory_min = float(accel_memory_min)
        self.band_growth_min = float(band_growth_min)
        self._forget_trend()

    def _forget_trend(self) -> None:
        self.t_last: float | None = None  # minutes since epoch of the newest reading
        self.step = 0.0  # EW mean sampling step, minutes
        self.y_last: float | None = None  # the newest occupancy reading ("now")
        # Level and rate from a short memory; acceleration from a longer one, where it is
        # steadier (it changes slowly in a build-up, but is noisy over a few minutes).
        self.short = DiscountedQuadratic()
        self.long = DiscountedQuadratic()
        # The last couple of minutes alone: a crowd that turned back is moving away now, even
        # while the curve through the last quarter hour, its rise included, still climbs.
        self.recent = DiscountedQuadratic()
        # Gate net inflow: persons a minute at each reading, weighted by the minutes it covers,
        # fitted with a straight line: its level is the rate now, its slope the acceleration.
        self.gate = DiscountedLine()
        self.t_gate: float | None = None  # minutes of the newest inflow
        # Inflow reported at the clock's current time (no minutes elapsed to spread it over):
        # carried to the next step, not dropped.
        self.gate_pending = 0.0

    def _advance(self, t: float) -> float:
        """Move the clock to ``t`` (minutes): forget and re-centre the sums; return the step."""
        if self.t_last is None:
            self.t_last = t
            return 0.0
        d = t - self.t_last
        if d <= 0.0:
            return 0.0
        self.step = d if self.step == 0.0 else self.step + 0.1 * (d - self.step)
        # Memories stretch to three sampling steps when readings are sparse.
        keep = 0.5 ** (d / max(self.half_life_min, 3.0 * self.step))
        self.short.advance(d, keep)
        self.long.advance(d, 0.5 ** (d / max(self.accel_memory_min, 6.0 * self.step)))
        self.recent.advance(d, 0.5 ** (d / max(RECENT_MIN, 3.0 * self.step)))
        if self.gate.s[0] > 0.0:  # zones without gates pay nothing for them
            self.gate.advance(d, keep)
        self.t_last = t
        return d

    def update(
        self, ts_ms: int | float, occupancy: float | None, net_inflow: float | None = None
    ) -> Forecast:
        """Learn a reading (``occupancy`` persons; ``net_inflow`` persons since the previous
        reading, if gates report it) and forecast from it. Either may be ``None`` (missing)."""
        t = ts_ms / MINUTE_MS
        if self.t_last is not None and t < self.t_last - max(JUMP_BACK_MIN, 3.0 * self.step):
            # Event time jumped far back (history replayed into a live zone, a source with a
            # reset clock): a trend across the jump means nothing, so start a new one.
            self._forget_trend()
        # The very first reading's inflow came over minutes nobody knows: not counted.
        spans = self.t_last is not None
        dt = self._advance(max(t, self.t_last if self.t_last is not None else t))
        if net_inflow is not None and math.isfinite(net_inflow):
            self.gate_pending += net_inflow if spans else 0.0
            self.t_gate = self.t_last
        if self.gate.s[0] > 0.0 or self.gate_pending:  # zones without gates skip all of it
            if self._gate_silent():
                self.gate, self.gate_pending = DiscountedLine(), 0.0
            elif dt > 0.0 and self.gate_pending:
                self.gate.add(self.gate_pending / dt, dt)
                self.gate_pending = 0.0
        if occupancy is not None and math.isfinite(occupancy):
            y = max(float(occupancy), 0.0)
            self.y_last = y
            self.short.add(y)
            self.long.add(y)
            self.recent.add(y)
        return self.forecast()

    def forecast(self) -> Forecast:
        """The forecast at the newest reading's time, from the state alone."""
        now = self.y_last
        if now is None:
            return Forecast()
        short = self.short.fit()
        if short is None:  # warming up: only "already there" is known
            return Forecast(now / self.area_m2, None, *self._there(self.warning, now),
                            *self._there(self.critical, now))  # fmt: skip
        (level, rate, _), cov, _ = short
        recent = self.recent.fit(degree=1)
        turned = recent is not None and _apart(recent, short, self.recent.middle(), BREAK_Z)
        if turned:
            # The last minutes left the curve (a turn sharper than its memory: a crowd that
            # stopped rising, a queue released): they alone say where the zone is and goes, in
            # a straight line (Page's 1954 idea: act on a change, not on the average across it).
            (level, rate, _), cov, _ = recent
        # Heading there: the rate now is clearly above zero (and the gates', if any, too) ...
        heading = rate > self.min_t * math.sqrt(max(cov[1][1], 0.0))
        if recent is not None:  # ... and not falling over the last minutes (moving away).
            heading = heading and recent[0][1] + math.sqrt(max(recent[1][1][1], 0.0)) > 0.0
        # The gates' rate now, its variance, their acceleration and its variance (None until
        # their rates span a few minutes: until then they say nothing the cameras do not).
        gate = self.gate.fit() if self.gate.s[0] > 0.0 and not self._gate_silent() else None
        if gate is not None:
            # Two independent views of the same rate: weigh them by their variances.
            rate, cov[1][1] = _fuse(rate, cov[1][1], gate[0], gate[1])
            # The gates clearly say it empties: moving away.
            heading = heading and gate[0] + math.sqrt(gate[1]) > 0.0
        # The acceleration (the long memory's fit) matters only for a crossing still ahead:
        # fitted only then (_minutes_to returns before using it otherwise), as it costs a third
        # of the forecast and most readings are of zones not heading anywhere.
        accel, accel_var = 0.0, 0.0
        if heading and not turned and now < self.critical * self.area_m2:
            long = self.long.fit()
            if long is not None:
                accel, accel_var = long[0][2], long[1][2][2]
            if gate is not None:  # the inflow's own slope
                accel, accel_var = _fuse(accel, accel_var, gate[2], gate[3])
        cov = [[cov[0][0], cov[0][1], 0.0], [cov[1][0], cov[1][1], 0.0], [0.0, 0.0, accel_var]]
        args = (max(level, 0.0), rate, accel, cov, heading)
        warn = self._minutes_to(self.warning, now, *args)
        crit = self._minutes_to(self.critical, now, *args)
        return Forecast(max(level, 0.0) / self.area_m2, rate / self.area_m2, *warn, *crit)

    def _there(self, density: float, now: float) -> tuple[float | None, ...]:
        return (0.0, 0.0, 0.0) if now >= density * self.area_m2 else (None, None, None)

    def _minutes_to(
        self,
        density: float,
        now: float,
        level: float,
        rate: float,
        accel: float,
        cov: list[list[float]],
        heading: bool,
    ) -> tuple[float | None, float | None, float | None]:
        limit = density * self.area_m2
        if now >= limit:
            return 0.0, 0.0, 0.0  # the newest reading is there: the density alert's business
        if not heading:
            return None, None, None
        # From the fitted level, unless the fit is past the line while the zone is not.
        gap = limit - level if level < limit else limit - now
        minutes = self._crossing(gap, rate, accel)
        if minutes is None or minutes > self.horizon_min:
            return None, None, None
        # Band (delta method): sd of the path at the crossing over the path's slope there,
        # spread log-normally (a crossing time is positive and skewed late).
        k = self._stretch()
        lam = math.log(2.0) / (self.trend_half_life_min * k)
        x = (
            1.0,
            (1.0 - math.exp(-lam * minutes)) / lam,
            damped_path(self.accel_half_life_min * k, minutes),
        )
        var = sum(x[i] * cov[i][j] * x[j] for i in range(3) for j in range(3))
        slope = self._path(rate, accel, minutes)[1]
        # The fit's errors are those of a rate and acceleration held constant; they too wander,
        # so the error grows faster with the horizon than the fit's own (Hyndman et al. 2008,
        # ch. 6: a local trend's forecast variance grows with the horizon's cube).
        growth = 1.0 + minutes / self.band_growth_min
        cv = min(math.sqrt(max(var, 0.0)) / max(slope, 1e-9) / minutes * growth, 10.0)
        low, high = minutes * math.exp(-self.band_z * cv), minutes * math.exp(self.band_z * cv)
        return minutes, low, high

    def _gate_silent(self) -> bool:
        """Whether the gates have not reported for ``GATE_SILENT_HALF_LIVES`` of the rate's
        memory (or never): their line is then dropped, not extrapolated for ever."""
        if self.t_gate is None or self.t_last is None:
            return True
        silent = self.t_last - self.t_gate
        return silent > GATE_SILENT_HALF_LIVES * max(self.half_life_min, 3.0 * self.step)

    def _stretch(self) -> float:
        """How much sparse readings stretch the memories, and with them the damping."""
        return max(1.0, 3.0 * self.step / self.half_life_min)

    def _path(self, rate: float, accel: float, m: float) -> tuple[float, float]:
        """Rise after ``m`` minutes along the damped path, and its slope then."""
        k = self._stretch()
        hr, ha = self.trend_half_life_min * k, self.accel_half_life_min * k
        lam = math.log(2.0) / hr
        rise = rate * (1.0 - math.exp(-lam * m)) / lam + accel * damped_path(ha, m)
        return rise, rate * _fade(hr, m) + accel * (1.0 - _fade(ha, m)) / (math.log(2.0) / ha)

    def _crossing(self, gap: float, rate: float, accel: float) -> float | None:
        """Minutes until the damped path rises by ``gap`` (Newton from the undamped root)."""
        m = crossing_minutes(gap, rate, accel) or gap / rate
        for _ in range(12):
            rise, slope = self._path(rate, accel, m)
            if slope <= 0.0:
                return None  # the path levels off before reaching the line
            step = (rise - gap) / slope
            m = max(m - step, 1e-3)
            if abs(step) < 1e-3 or m > 4.0 * self.horizon_min:
                break
        return m if abs(self._path(rate, accel, m)[0] - gap) < 1e-2 * max(gap, 1.0) else None

    def to_state(self) -> dict[str, Any]:
        """The learned sums (a few hundred bytes), never the configuration: resume with
        :meth:`from_state`, which takes area and thresholds from the caller (the site file).

        >>> f = DensityForecaster(area_m2=500, warning=2, critical=3)
        >>> for m in range(10):
        ...     _ = f.update(m * 60_000, 100 * m)
        >>> g = DensityForecaster.from_state(f.to_state(), area_m2=500, warning=2, critical=3)
        >>> g.update(600_000, 1000) == f.update(600_000, 1000)
        True
        >>> bigger = DensityForecaster.from_state(f.to_state(), 1000, 2, 3)  # area edited
        >>> round(bigger.forecast().density / g.forecast().density, 2)
        0.5
        """
        return {
            "v": STATE_VERSION,
            "t": self.t_last,
            "st": self.step,
            "s": self.short.s + self.long.s + self.recent.s,
            # The gates' persons and minutes (what version 3 kept); the rest of their line's
            # sums, when and what they last reported only for zones whose gates ever did.
            "in": [self.gate.s[3], self.gate.s[0]],
            **({} if self.t_gate is None else {"g": self._gate_state()}),
            "y": self.y_last,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], area_m2: float, warning: float, critical: float, **kw: float
    ) -> DensityForecaster:
        """A forecaster configured by the arguments that resumes the learned sums of ``state``.

        States of versions 1 and 2 (a straight line's sums) raise ``ValueError``: the caller
        starts a new trend, which forecasts again after ``MIN_SPAN_MIN`` minutes of readings.
        """
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"forecast state version {state.get('v')!r} cannot be resumed")
        f = cls(area_m2, warning, critical, **kw)
        f.t_last, f.step, f.y_last = state["t"], state["st"], state["y"]
        sums = state["s"]
        f.short, f.long, f.recent = (DiscountedQuadratic(sums[i : i + 10]) for i in (0, 10, 20))
        g = state.get("g")
        if g is not None and len(g) == 8:
            net, minutes = state["in"]
            s1, s2, sty, syy, sw, k, f.t_gate, f.gate_pending = g
            f.gate = DiscountedLine([minutes, s1, s2, net, sty, syy, sw, k])
        # Else no gate ever reported, or the state predates the gates' line (or its count):
        # the line starts anew from the next inflow. Resuming it from a mean alone gave it a
        # variance of 0 (a band of nothing) until it had forgotten that mean.
        return f

    def _gate_state(self) -> list[float]:
        s = self.gate.s
        return [s[1], s[2], s[4], s[5], s[6], s[7], self.t_gate, self.gate_pending]


def _apart(line: tuple, curve: tuple, at: float, z: float) -> bool:
    """A straight line's level or rate at time ``at`` (the middle of its readings, where a line
    estimates a curve best) differs from a quadratic's by more than ``z`` standard errors (two
    sample z tests): the two memories do not describe the same crowd.

    >>> cov = [[4.0, 0, 0], [0, 1.0, 0], [0, 0, 0.0]]
    >>> line = ([110.0, 2.0, 0.0], cov, 0.0)
    >>> _apart(line, ([100.0, 2.0, 0.0], cov, 0.0), 0.0, 3.0)  # 10 apart, sd 2.8
    True
    >>> _apart(line, ([100.0, 2.0, 0.0], cov, 0.0), 0.0, 4.0)
    False
    >>> _apart(([96.0, 8.0, 0.0], cov, 0.0), ([100.0, 10.0, 2.0], cov, 0.0), -1.0, 3.0)
    False
    """
    (a0, a1, _), ca, _ = line
    (b0, b1, b2), cb, _ = curve
    level_gap = (a0 + a1 * at) - (b0 + b1 * at + 0.5 * b2 * at * at)
    rate_gap = a1 - (b1 + b2 * at)
    return abs(level_gap) > z * math.sqrt(max(ca[0][0] + cb[0][0], 0.0)) or abs(
        rate_gap
    ) > z * math.sqrt(max(ca[1][1] + cb[1][1], 0.0))


def _fuse(a: float, var_a: float, b: float, var_b: float) -> tuple[float, float]:
    """Two independent estimates of one quantity, weighed by their inverse variances (the
    minimum-variance unbiased combination; Gauss 1823): the estimate and its variance. Equal
    weights when both variances are ~0 (readings on a perfect line).

    >>> _fuse(10.0, 4.0, 20.0, 1.0)
    (18.0, 0.8)
    >>> _fuse(10.0, 0.0, 20.0, 0.0), _fuse(10.0, 4.0, 99.0, math.inf)
    ((15.0, 0.0), (10.0, 4.0))
    """
    var_a, var_b = max(var_a, 1e-12), max(var_b, 1e-12)
    if math.isinf(var_b):
        return a, var_a
    w = var_b / (var_a + var_b)
    var = var_a * var_b / (var_a + var_b)
    return w * a + (1.0 - w) * b, var if var > 1e-11 else 0.0


def _fade(half_life: float, minutes: float) -> float:
    """Share of the acceleration left after ``minutes``: ``2^(-m/h)``."""
    return 0.5 ** (minutes / half_life)


def _inverse3(m: tuple[tuple[float, ...], ...]) -> list[list[float]] | None:
    """Inverse of a symmetric 3×3 matrix by cofactors (Cramer), ``None`` if near singular.

    >>> _inverse3(((2.0, 0.0, 0.0), (0.0, 4.0, 0.0), (0.0, 0.0, 0.5)))
    [[0.5, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 2.0]]
    """
    (a, b, c), (_, e, f), (_, _, i) = m
    co = [
        [e * i - f * f, c * f - b * i, b * f - c * e],
        [c * f - b * i, a * i - c * c, b * c - a * f],
        [b * f - c * e, b * c - a * f, a * e - b * b],
    ]
    det = a * co[0][0] + b * co[0][1] + c * co[0][2]
    if not det > 1e-12 * abs(a * e * i) or not math.isfinite(det):
        return None
    return [
        [co[0][0] / det, co[0][1] / det, co[0][2] / det],
        [co[1][0] / det, co[1][1] / det, co[1][2] / det],
        [co[2][0] / det, co[2][1] / det, co[2][2] / det],
    ]
