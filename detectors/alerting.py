"""Alert episodes: one alert per breach, escalation, and clearing with hysteresis and a hold time.

A value that hovers at its threshold must not page dispatch again and again, so an episode opens
when the value reaches the warning threshold (after ``min_duration_s`` above it, if set), escalates
once to critical, and clears only after the value has stayed on the safe side of
``warning -/+ hysteresis * |warning|`` for ``hold_s`` seconds of event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["warning", "critical"]
TransitionState = Literal["raised", "escalated", "cleared"]


@dataclass(frozen=True, slots=True)
class Transition:
    """What an update changed: the caller turns it into an alert message."""

    state: TransitionState
    severity: Severity
    value: float
    threshold: float
    started_at: int
    ts: int


@dataclass(slots=True)
class Episode:
    """The serialisable state of one alarm (a few numbers, held in a Faust table)."""

    severity: Severity | None = None  # None: no open episode
    started_at: int = 0
    above_since: int | None = None  # when the value first crossed warning, before it opens
    safe_since: int | None = None  # when the value first went back to the safe side

    def to_state(self) -> dict:
        # Explicit rather than dataclasses.asdict: this runs per zone per batch in the worker.
        return {
            "severity": self.severity,
            "started_at": self.started_at,
            "above_since": self.above_since,
            "safe_since": self.safe_since,
        }

    @classmethod
    def from_state(cls, state: dict | None) -> Episode:
        return cls(**state) if state else cls()


@dataclass(frozen=True, slots=True)
class Alarm:
    """Thresholds of one alert kind; ``higher_is_worse=False`` for e.g. minutes to critical.

    >>> alarm = Alarm(warning=2.0, critical=3.0, hysteresis=0.1, hold_s=60)
    >>> ep = Episode()
    >>> alarm.update(ep, 0, 2.1).state, ep.severity
    ('raised', 'warning')
    >>> alarm.update(ep, 10_000, 1.9) is None      # inside the band: no flapping
    True
    >>> alarm.update(ep, 20_000, 3.2).state
    'escalated'
    >>> alarm.update(ep, 30_000, 1.0), alarm.update(ep, 95_000, 1.0).state
    (None, 'cleared')
    """

    warning: float
    critical: float
    hysteresis: float = 0.1
    hold_s: float = 60.0
    min_duration_s: float = 0.0
    higher_is_worse: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.hysteresis < 1:
            raise ValueError(f"hysteresis must be in [0, 1), got {self.hysteresis}")
        if (self.critical < self.warning) == self.higher_is_worse and self.critical != self.warning:
            raise ValueError(f"critical {self.critical} is less severe than warning {self.warning}")

    def _worse(self, value: float, threshold: float) -> bool:
        return value >= threshold if self.higher_is_worse else value <= threshold

    @property
    def clear_below(self) -> float:
        band = self.hysteresis * abs(self.warning)
        return self.warning - band if self.higher_is_worse else self.warning + band

    def severity_of(self, value: float) -> Severity | None:
        if self._worse(value, self.critical):
            return "critical"
        return "warning" if self._worse(value, self.warning) else None

    def update(self, ep: Episode, ts: int, value: float | None) -> Transition | None:
        """Feed one value at event time ``ts`` (ms); ``None`` means "not breaching at all"."""
        severity = None if value is None else self.severity_of(value)
        if ep.severity is None:
            return self._maybe_raise(ep, ts, value, severity)
        if severity == "critical" and ep.severity == "warning":
            ep.severity, ep.safe_since = "critical", None
            return Transition("escalated", "critical", value, self.critical, ep.started_at, ts)
        safe = value is None or not self._worse(value, self.clear_below)
        if not safe:
            ep.safe_since = None
            return None
        if ep.safe_since is None:
            ep.safe_since = ts
        if ts - ep.safe_since < self.hold_s * 1000:
            return None
        last, started = ep.severity, ep.started_at
        ep.severity, ep.safe_since, ep.above_since = None, None, None
        shown = value if value is not None else float("nan")
        return Transition("cleared", last, shown, self.clear_below, started, ts)

    def _maybe_raise(
        self, ep: Episode, ts: int, value: float | None, severity: Severity | None
    ) -> Transition | None:
        if severity is None or value is None:
            ep.above_since = None
            return None
        if ep.above_since is None:
            ep.above_since = ts
        if ts - ep.above_since < self.min_duration_s * 1000:
            return None
        ep.severity, ep.started_at, ep.safe_since = severity, ep.above_since, None
        threshold = self.critical if severity == "critical" else self.warning
        return Transition("raised", severity, value, threshold, ep.started_at, ts)
