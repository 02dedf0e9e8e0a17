"""The evaluation's metrics count what they say they count."""

from __future__ import annotations

from streams.offline.evaluation import (
    DAY_MS,
    HOUR_MS,
    MELBOURNE_EVENTS,
    MELBOURNE_KNOWN,
    Window,
    evaluate,
    synthetic,
)


def test_detections_delays_and_false_alarms():
    ts = [i * HOUR_MS for i in range(24 * 7 * 4)]  # four weeks, hourly
    values = [1.0] * len(ts)
    scores = [0.0] * len(ts)
    event = Window(20 * DAY_MS, 20 * DAY_MS + 5 * HOUR_MS, "event")
    missed = Window(22 * DAY_MS, 22 * DAY_MS + 5 * HOUR_MS, "missed")
    holiday = Window(25 * DAY_MS, 26 * DAY_MS, "holiday")
    early = Window(3 * DAY_MS, 3 * DAY_MS + HOUR_MS, "in the burn-in")

    def alarm(t: int) -> None:
        scores[t // HOUR_MS] = 0.95

    alarm(20 * DAY_MS + 2 * HOUR_MS)  # detection, 120 min late
    alarm(20 * DAY_MS + 3 * HOUR_MS)  # same episode
    alarm(25 * DAY_MS + 9 * HOUR_MS)  # on the holiday: neither
    alarm(15 * DAY_MS)  # false alarm
    alarm(27 * DAY_MS)  # false alarm
    alarm(3 * DAY_MS)  # burn-in: not counted
    alarm(5 * DAY_MS)  # burn-in, and the first week's false alarm in the breakdown
    m = evaluate("t", ts, values, scores, [event, missed, early], [holiday])
    assert (m.events, m.detected, m.missed) == (2, 1, ["missed"])
    assert m.delays_min == [120.0]
    assert (m.episodes, m.false_alarms) == (4, 2)
    assert abs(m.scored_weeks - 2.0) < 0.01  # hours between readings after the burn-in
    assert abs(m.false_alarms_per_week - 1.0) < 0.01
    # The whole series by kind of day (the early event's alarm is a detection, not counted).
    assert (m.fa_first_week, m.fa_holidays, m.fa_other) == (1, 1, 2)
    assert abs(m.weeks_holidays - 1 / 7) < 0.01 and abs(m.weeks_first - 1.0) < 0.01
    assert abs(m.fa_all_days - 4 / 4.0) < 0.02
    assert (m.normal_points, m.over_090, m.over_099) == (len(ts) - 6 - 6 - 2, 4, 0)


def test_synthetic_events_lie_after_the_burn_in_and_in_the_data():
    for scenario in ("surge", "blind-camera", "slow-build-up", "level-shift"):
        ts, values, events = synthetic(scenario, seed=3, weeks=4)
        assert events and all(ts[0] + 14 * DAY_MS <= w.start_ms < ts[-1] for w in events)
        inside = [v for t, v in zip(ts, values, strict=True) if t in events[0] and v is not None]
        assert inside


def test_melbourne_labels_are_sane():
    assert len(MELBOURNE_EVENTS) == 8 and len(MELBOURNE_KNOWN) == 35
    for w in (*MELBOURNE_EVENTS, *MELBOURNE_KNOWN):
        assert 0 < w.end_ms - w.start_ms <= 4 * DAY_MS
