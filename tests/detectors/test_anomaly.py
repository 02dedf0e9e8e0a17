"""Behaviour of the streaming seasonal anomaly detector."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from detectors.anomaly import SeasonalAnomalyDetector, score_from_z

HOUR = 3_600_000
T0 = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC


def rhythm(hour: float) -> float:
    """A busy zone: near zero at night, peaks at 08:30 and 18:00, quieter on weekends."""
    h = hour % 24
    weekend = (hour // 24) % 7 >= 5
    peaks = (500 if weekend else 1000) * math.exp(-0.5 * ((h - 8.5) / 1.5) ** 2)
    peaks += 1200 * math.exp(-0.5 * ((h - 18) / 2.0) ** 2) + 300 * (7 <= h <= 21)
    return 1.0 + peaks


def series(hours: float, step_min: float = 60.0, seed: int = 0, noise: float = 0.05):
    """(ts_ms, value) pairs of the rhythm with multiplicative and counting noise."""
    rng = np.random.default_rng(seed)
    n = int(hours * 60 / step_min)
    out = []
    for i in range(n):
        h = i * step_min / 60.0
        mean = rhythm(h) * math.exp(rng.normal(0.0, noise))
        out.append((T0 + int(h * HOUR), float(rng.poisson(mean))))
    return out


def next_busy_hour(t: int) -> int:
    """The next 18:00 after ``t``, when the zone is at its busiest."""
    day = (t - T0) // (24 * HOUR) + 1
    return T0 + day * 24 * HOUR + 18 * HOUR


def run(det: SeasonalAnomalyDetector, data) -> list[float | None]:
    return [det.update(t, v) for t, v in data]


@pytest.fixture(scope="module")
def three_weeks():
    det = SeasonalAnomalyDetector()
    data = series(21 * 24)
    scores = run(det, data)
    return det, data, scores


def test_warm_up_scores_zero_then_normal_rhythm_scores_low(three_weeks):
    det, data, scores = three_weeks
    assert all(s == 0.0 for s in scores[:24])
    assert det.warm
    after_first_week = scores[7 * 24 :]
    assert max(after_first_week) < 0.9
    assert np.mean(after_first_week) < 0.05


def test_spike_scored_high(three_weeks):
    det, data, _ = three_weeks
    det = SeasonalAnomalyDetector.from_state(det.to_state())
    t = next_busy_hour(data[-1][0])
    assert det.update(t, 3 * rhythm((t - T0) / HOUR)) > 0.99
    assert det.last.kind == "spike"


@pytest.mark.parametrize("hour_of_day", [9, 18])
def test_busy_hour_drop_to_zero_is_anomalous(three_weeks, hour_of_day):
    det, data, _ = three_weeks
    det = SeasonalAnomalyDetector.from_state(det.to_state())
    t = T0 + (21 * 24 + hour_of_day) * HOUR  # a Monday
    for h in range(21 * 24, 21 * 24 + hour_of_day):
        det.update(T0 + h * HOUR, rhythm(h))
    assert det.update(t, 0.0) > 0.99
    assert det.last.kind == "drop"


def test_night_zeros_are_not_anomalous(three_weeks):
    det, data, scores = three_weeks
    night = [s for (t, v), s in zip(data, scores, strict=True) if v == 0 and t - T0 > 7 * 24 * HOUR]
    assert len(night) > 10  # the fixture has real zeros at night
    assert max(night) < 0.8  # graded (0.5 is p = 0.016 / 4): far from the 0.9 of an alarm


def test_level_shift_detected():
    det = SeasonalAnomalyDetector()
    data = series(28 * 24, seed=3)
    shift_at = 21 * 24 + 10
    data = [(t, v * (1.6 if i >= shift_at else 1.0)) for i, (t, v) in enumerate(data)]
    scores = run(det, data)
    assert max(scores[14 * 24 : shift_at]) < 0.9
    first = next(i for i, s in enumerate(scores[shift_at:]) if s >= 0.9)
    assert first <= 12  # hours: within the day it started


def test_unusual_growth_rate_detected():
    """A steady climb to 3 x over two hours (5-minute readings) is caught during the climb."""
    det = SeasonalAnomalyDetector()
    data = series(21 * 24, step_min=5, seed=5)
    start = 20 * 24 * 12 + 10 * 12  # day 20, 10:00
    end = start + 24
    ramped = []
    for i, (t, v) in enumerate(data):
        factor = 1.0 + 2.0 * min(max(i - start, 0) / (end - start), 1.0) if i >= start else 1.0
        ramped.append((t, v * factor))
    scores = run(det, ramped[: end + 1])
    assert max(scores[14 * 24 * 12 : start]) < 0.9
    assert max(scores[start : end + 1]) >= 0.9
    # The growth component sees it before the level is far off.
    det2 = SeasonalAnomalyDetector()
    run(det2, ramped[: start + 8])
    assert det2.last.z_growth > 2.0


def test_causal_appending_future_data_changes_no_past_score():
    data = series(10 * 24, seed=1)
    short = run(SeasonalAnomalyDetector(), data[:150])
    longer = run(SeasonalAnomalyDetector(), data + [(data[-1][0] + HOUR, 1e6)])
    assert longer[:150] == short


def test_state_round_trip_resumes_identically():
    data = series(12 * 24, step_min=10, seed=2)
    det = SeasonalAnomalyDetector(tz="Asia/Shanghai")
    run(det, data[:1000])
    restored = SeasonalAnomalyDetector.from_state(
        msgspec.msgpack.decode(msgspec.msgpack.encode(det.to_state())), tz="Asia/Shanghai"
    )
    assert run(restored, data[1000:]) == run(det, data[1000:])
    assert restored.to_state() == det.to_state()


def test_the_time_zone_comes_from_the_caller_not_from_the_state():
    """Same learned state, two configurations: the profile is read at the caller's hours."""
    data = series(3 * 24, seed=2)
    det = SeasonalAnomalyDetector(tz="Asia/Shanghai")
    run(det, data)
    t = data[-1][0] + HOUR
    here = SeasonalAnomalyDetector.from_state(det.to_state(), tz="Asia/Shanghai")
    there = SeasonalAnomalyDetector.from_state(det.to_state(), tz="America/New_York")
    here.update(t, 500)
    there.update(t, 500)
    assert here.last.expected != pytest.approx(there.last.expected, rel=0.01)


def test_local_hours_follow_daylight_saving():
    """08:00 local in London falls in bin 8 of the day in winter (UTC+0) and summer (UTC+1),
    also straight after the clocks change (30 March 2025, 01:00 UTC)."""
    det = SeasonalAnomalyDetector(tz="Europe/London")
    change = 1_743_296_400_000  # 2025-03-30 01:00 UTC
    assert det.hour_of_week(change - 1) % 24 == pytest.approx(1.0, abs=1e-6)  # 00:59:59.999
    assert det.hour_of_week(change) % 24 == 2.0  # 02:00 BST: 01:00-02:00 local never happens
    assert det.hour_of_week(change + 6 * HOUR) % 24 == 8.0
    assert det.hour_of_week(change - 17 * HOUR) % 24 == 8.0  # the morning before, GMT


def test_state_is_bounded_over_a_long_series():
    """Two years of hourly data (the forgetting weights rebase once) and it still works."""
    det = SeasonalAnomalyDetector()
    data = series(2 * 365 * 24, seed=4)
    sizes = []
    for i, (t, v) in enumerate(data):
        det.update(t, v)
        if i in (24 * 14, len(data) - 1):
            sizes.append(len(msgspec.msgpack.encode(det.to_state())))
    assert max(sizes) < 1500  # with the holiday bins (zeros until a holiday: they deflate)
    assert abs(sizes[0] - sizes[1]) < 300  # only how well the packed profiles deflate varies
    t = next_busy_hour(data[-1][0])
    assert det.update(t, 5 * rhythm((t - T0) / HOUR)) > 0.99


def test_missing_points_score_none_and_change_nothing(three_weeks):
    det, data, _ = three_weeks
    det = SeasonalAnomalyDetector.from_state(det.to_state())
    before = det.to_state()
    assert det.update(data[-1][0] + HOUR, None) is None
    assert det.update(data[-1][0] + HOUR, float("nan")) is None
    assert det.to_state() == before


def test_step_size_does_not_matter():
    """The same zone read hourly and every 2 minutes, irregularly: same verdicts."""
    rng = np.random.default_rng(9)
    for step in (60.0, 2.0):
        det = SeasonalAnomalyDetector()
        data = series(15 * 24, step_min=step, seed=6)
        jittered = [(t + int(rng.integers(0, 20_000)), v) for t, v in data]
        scores = run(det, jittered)
        assert max(scores[int(8 * 24 * 60 / step) :]) < 0.9, step
        t = next_busy_hour(jittered[-1][0])
        assert det.update(t, 4 * rhythm((t - T0) / HOUR)) > 0.99, step


def test_out_of_order_reading_does_not_move_the_clock_back(three_weeks):
    det, data, _ = three_weeks
    det = SeasonalAnomalyDetector.from_state(det.to_state())
    t_last = det.t_last
    det.update(data[-1][0] - 5 * HOUR, rhythm(21 * 24 - 5))
    assert det.t_last == t_last


def test_score_mapping_is_monotonic_graded_and_calibrated():
    zs = np.linspace(0, 20, 201)
    scores = [score_from_z(z) for z in zs]
    assert scores == sorted(scores)
    assert scores[0] == 0.0 and 0.99999 < scores[-1] < 1.0  # graded, never pinned at 1
    # Calibrated: under the model of normal (z ~ N(0, 1)), P(score >= s) = (1 - s) ** 6.
    z = np.random.default_rng(1).standard_normal(400_000)
    s = np.array([score_from_z(x) for x in z])
    for level in (0.3, 0.5, 0.6):
        assert np.mean(s >= level) == pytest.approx((1 - level) ** 6, rel=0.1)


def test_unknown_parameter_rejected():
    with pytest.raises(TypeError, match="halflife"):
        SeasonalAnomalyDetector(halflife=3)


def test_a_modest_step_on_a_quiet_hourly_series_does_not_page():
    # Hourly counts: the 15-minute growth window holds one reading, so growth must not count it
    # twice; +10 % on a steady 1000 is about three Poisson sigmas, not an emergency.
    # Five weeks, so each hour of the week has been seen a few times (one hour of data per week
    # per bin: until then the bin's own uncertainty, week_spread, dominates a flat series).
    det = SeasonalAnomalyDetector()
    hour = 3_600_000
    n = 24 * 7 * 5
    for h in range(n):
        det.update(h * hour, 1000 + (h * 7) % 5)
    score = det.update(n * hour, 1100)
    assert 0 < score < 0.9
    assert det.update(n * hour + hour, 5000) > 0.99  # a real spike still does
