"""Minutes until a zone reaches its warning and critical densities, with a band of uncertainty.

One :class:`DensityForecaster` per zone. The trend is a local linear regression of occupancy on
time with exponential forgetting by elapsed time (an exponentially weighted least-squares line,
as in Brown's discounted least squares, "Smoothing, Forecasting and Prediction", 1963), kept as
seven running sums re-centred on the newest reading: O(1) per update, a few numbers of state.
Where gates report it, the net inflow (entered - exited) gives a second, independent rate.

The forecast is ``None`` when the zone is not heading there: when the band's slower rate is not
above zero (flat, falling or too noisy to say) or the point forecast lies beyond ``horizon_min``.
Thresholds are per-site settings; the defaults below are those of the site file
(streams/config/sites/guangzhou-station.toml), from Still 2014 and the UK Green Guide 2008.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

MINUTE_MS = 60_000.0
MIN_SPAN_MIN = 3.0
JUMP_BACK_MIN = 5.0  # a reading this much older than the newest starts a new trend
STATE_VERSION = 1

# (warning, critical) persons/m². Still 2014: plan moving areas <= 2 p/m², unstable above 3;
# moving queues <= 4 p/m², Green Guide 2008 standing maximum 4.7 p/m².
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "walkway": (2.0, 3.0),
    "queuing": (4.0, 4.7),
}


@dataclass(frozen=True, slots=True)
class Forecast:
    """One forecast: densities in persons/m², rates in persons/m²/min, times in minutes.

    ``*_low``/``*_high`` bound the minutes (fastest and slowest plausible rate); all three are
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


class DensityForecaster:
    """Time to warning/critical density from the occupancy trend and optional gate net inflow.

    * ``area_m2``: the zone's walkable area; ``warning``/``critical``: densities in persons/m².
    * ``half_life_min``: memory of the trend; it stretches to three sampling steps when readings
      are sparser, so hourly counts and 5-second readings both give a line through several points.
    * ``horizon_min``: a crossing further away than this is reported as ``None``.
    * ``band_z``: width of the band in standard errors of the rate (1.645: a 90 % band).

    A zone of 1000 m² filling by 10 people a minute from 1000 people reaches 2 p/m² in 100 min:

    >>> f = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    >>> for minute in range(0, 31):
    ...     out = f.update(minute * 60_000, 1000 + 10 * minute)
    >>> round(out.density, 2), round(out.minutes_to_warning), round(out.minutes_to_critical)
    (1.3, 70, 170)
    >>> for minute in range(31, 41):   # it empties again: no countdown
    ...     out = f.update(minute * 60_000, 1300 - 20 * (minute - 30))
    >>> out.minutes_to_warning is None and out.minutes_to_critical is None
    True
    """

    __slots__ = (
        "area_m2",
        "warning",
        "critical",
        "half_life_min",
        "horizon_min",
        "band_z",
        "t_last",
        "step",
        "s0",
        "s1",
        "s2",
        "sy",
        "sty",
        "syy",
        "sw2",
        "in_net",
        "in_time",
    )

    def __init__(
        self,
        area_m2: float,
        warning: float,
        critical: float,
        half_life_min: float = 10.0,
        horizon_min: float = 120.0,
        band_z: float = 1.645,
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
        self._forget_trend()

    def _forget_trend(self) -> None:
        self.t_last: float | None = None  # minutes since epoch of the newest reading
        self.step = 0.0  # EW mean sampling step, minutes
        # Weighted sums over readings, time measured from t_last: sum w, w t, w t², w y,
        # w t y, w y², w².
        self.s0 = self.s1 = self.s2 = self.sy = self.sty = self.syy = self.sw2 = 0.0
        # Gate net inflow: forgetting sums of persons and of the minutes they came in.
        self.in_net = self.in_time = 0.0

    def _advance(self, t: float) -> float:
        """Move the clock to ``t`` (minutes): forget and re-centre the sums; return the step."""
        if self.t_last is None:
            self.t_last = t
            return 0.0
        dt = t - self.t_last
        if dt <= 0.0:
            return 0.0
        self.step = dt if self.step == 0.0 else self.step + 0.1 * (dt - self.step)
        half_life = max(self.half_life_min, 3.0 * self.step)
        keep = 0.5 ** (dt / half_life)
        # Shift the time origin by dt (t_i -> t_i - dt), then forget.
        self.s2 = (self.s2 - 2.0 * dt * self.s1 + dt * dt * self.s0) * keep
        self.s1 = (self.s1 - dt * self.s0) * keep
        self.sty = (self.sty - dt * self.sy) * keep
        self.s0 *= keep
        self.sy *= keep
        self.syy *= keep
        self.sw2 *= keep * keep
        self.in_net *= keep
        self.in_time *= keep
        self.t_last = t
        return dt

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
        dt = self._advance(max(t, self.t_last if self.t_last is not None else t))
        if net_inflow is not None and math.isfinite(net_inflow) and dt > 0.0:
            self.in_net += net_inflow
            self.in_time += dt
        if occupancy is not None and math.isfinite(occupancy):
            y = max(float(occupancy), 0.0)
            self.s0 += 1.0
            self.sy += y
            self.syy += y * y
            self.sw2 += 1.0
        return self.forecast()

    def forecast(self) -> Forecast:
        """The forecast at the newest reading's time, from the state alone."""
        if self.s0 <= 0.0:
            return Forecast()
        mean_t = self.s1 / self.s0
        mean_y = self.sy / self.s0
        var_t = self.s2 / self.s0 - mean_t * mean_t
        n_eff = self.s0 * self.s0 / self.sw2
        # Warm-up: no trend until the readings span MIN_SPAN_MIN minutes (for evenly spaced
        # readings over a span S the time spread is S / sqrt(12)); a few seconds of data after a
        # start would otherwise turn camera noise into a steep line.
        if n_eff < 3.0 or var_t < MIN_SPAN_MIN**2 / 12.0:
            return Forecast(density=mean_y / self.area_m2)
        slope = (self.sty / self.s0 - mean_t * mean_y) / var_t
        level = mean_y - slope * mean_t  # the fitted line at t = 0, the newest reading
        resid_var = max(self.syy / self.s0 - mean_y * mean_y - slope * slope * var_t, 0.0)
        resid_var *= n_eff / (n_eff - 2.0)
        se = math.sqrt(resid_var / (n_eff * var_t))
        lo, hi = slope - self.band_z * se, slope + self.band_z * se
        rate = slope
        if self.in_time > 0.0:
            # Two independent views of the same rate: average them, and let the band span both.
            gate_rate = self.in_net / self.in_time
            rate = 0.5 * (slope + gate_rate)
            lo, hi = min(lo, gate_rate), max(hi, gate_rate)
        level = max(level, 0.0)
        # The band also spans where the zone is now: readings scatter sd around the line.
        spread = self.band_z * math.sqrt(resid_var)
        warn = self._minutes_to(self.warning, level, spread, rate, lo, hi)
        crit = self._minutes_to(self.critical, level, spread, rate, lo, hi)
        return Forecast(level / self.area_m2, rate / self.area_m2, *warn, *crit)

    def _minutes_to(
        self, density: float, level: float, spread: float, rate: float, lo: float, hi: float
    ) -> tuple[float | None, float | None, float | None]:
        gap = density * self.area_m2 - level
        if gap <= 0.0:
            return 0.0, 0.0, 0.0
        if lo <= 0.0 or rate <= 0.0:
            return None, None, None
        minutes = gap / rate
        if minutes > self.horizon_min:
            return None, None, None
        return minutes, max(gap - spread, 0.0) / hi, (gap + spread) / lo

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (a few hundred bytes): resume with :meth:`from_state`.

        >>> f = DensityForecaster(area_m2=500, warning=2, critical=3)
        >>> for m in range(10):
        ...     _ = f.update(m * 60_000, 100 * m)
        >>> g = DensityForecaster.from_state(f.to_state())
        >>> g.update(600_000, 1000) == f.update(600_000, 1000)
        True
        """
        return {
            "v": STATE_VERSION,
            "cfg": [
                self.area_m2,
                self.warning,
                self.critical,
                self.half_life_min,
                self.horizon_min,
                self.band_z,
            ],
            "t": self.t_last,
            "st": self.step,
            "s": [self.s0, self.s1, self.s2, self.sy, self.sty, self.syy, self.sw2],
            "in": [self.in_net, self.in_time],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DensityForecaster:
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unknown forecast state version {state.get('v')!r}")
        f = cls(*state["cfg"])
        f.t_last, f.step = state["t"], state["st"]
        f.s0, f.s1, f.s2, f.sy, f.sty, f.syy, f.sw2 = state["s"]
        f.in_net, f.in_time = state["in"]
        return f

    @classmethod
    def for_kind(
        cls, area_m2: float, kind: Literal["walkway", "queuing"] = "walkway", **kw: float
    ) -> DensityForecaster:
        """A forecaster with the default thresholds of a kind of space.

        >>> DensityForecaster.for_kind(800, "queuing").critical
        4.7
        """
        warning, critical = DEFAULT_THRESHOLDS[kind]
        return cls(area_m2, warning, critical, **kw)
