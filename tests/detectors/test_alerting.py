"""Alert episodes: one alert per breach, escalation, hysteresis and hold time."""

import pytest

from detectors.alerting import Alarm, Episode

ALARM = Alarm(warning=2.0, critical=3.0, hysteresis=0.1, hold_s=60)


def feed(alarm: Alarm, values: list[float | None], step_ms: int = 5_000) -> list[tuple]:
    ep = Episode()
    out = []
    for i, v in enumerate(values):
        t = alarm.update(ep, i * step_ms, v)
        if t:
            out.append((i, t.state, t.severity))
    return out


def test_value_hovering_at_threshold_raises_once_and_never_storms():
    hovering = [1.9, 2.05, 1.95, 2.1, 1.85, 2.0, 1.99] * 20  # stays inside the 1.8 band
    assert feed(ALARM, hovering) == [(1, "raised", "warning")]


def test_escalates_once_then_clears_only_after_hold_time_below_band():
    values = [1.0, 2.2, 3.1, 3.5, 2.5] + [1.7] * 12 + [1.0]
    events = feed(ALARM, values)
    assert events[:2] == [(1, "raised", "warning"), (2, "escalated", "critical")]
    # 1.7 is below 2.0 - 0.2 from index 5 on; 60 s at 5 s steps -> cleared at index 17
    assert events[2:] == [(17, "cleared", "critical")]


def test_going_back_above_band_restarts_the_hold():
    values = [2.5] + [1.0] * 11 + [1.9] + [1.0] * 13
    events = feed(ALARM, values)
    cleared = [i for i, state, _ in events if state == "cleared"]
    assert cleared == [25]  # 13 + 12 steps of 5 s = 60 s after the last 1.9


def test_critical_at_first_breach_raises_critical_directly():
    assert feed(ALARM, [1.0, 3.4]) == [(1, "raised", "critical")]


def test_min_duration_suppresses_short_blips_and_dates_episode_from_first_breach():
    alarm = Alarm(warning=0.9, critical=0.99, min_duration_s=30, hold_s=0)
    ep = Episode()
    assert alarm.update(ep, 0, 0.95) is None
    assert alarm.update(ep, 10_000, 0.5) is None  # blip over: no alert
    assert alarm.update(ep, 20_000, 0.95) is None
    raised = alarm.update(ep, 50_000, 0.96)
    assert raised is not None and raised.started_at == 20_000


def test_lower_is_worse_for_minutes_to_critical():
    alarm = Alarm(warning=15, critical=5, higher_is_worse=False, hold_s=0)
    events = feed(alarm, [None, 30, 12, 4, None])
    assert [e[1:] for e in events] == [
        ("raised", "warning"),
        ("escalated", "critical"),
        ("cleared", "critical"),
    ]


def test_episode_state_round_trips():
    ep = Episode()
    ALARM.update(ep, 0, 2.5)
    restored = Episode.from_state(ep.to_state())
    assert restored == ep and ALARM.update(restored, 5_000, 3.2).state == "escalated"


def test_inverted_thresholds_rejected():
    with pytest.raises(ValueError, match="less severe"):
        Alarm(warning=3.0, critical=2.0)
