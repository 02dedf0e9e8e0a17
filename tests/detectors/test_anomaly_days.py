"""The anomaly detector on days that are not ordinary: its first week, public holidays, event
days with an expected uplift, and a level shift it learns (the score decays, never pinned)."""

from __future__ import annotations

import math

import numpy as np

from detectors.anomaly import Day, SeasonalAnomalyDetector

HOUR = 3_600_000
T0 = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC
STEP_MIN = 10
SUNDAY_LIKE = Day(as_weekday=6, holiday=True, label="a holiday")


def level(hour: float, weekend_share: float = 0.35) -> float:
    """A station zone: busy weekdays (peaks at 08:30 and 18:00), weekends at a third."""
    h = hour % 24
    base = 40 + 1500 * math.exp(-0.5 * ((h - 8.5) / 1.5) ** 2)
    base += 1800 * math.exp(-0.5 * ((h - 18) / 2.0) ** 2) + 600 * (7 <= h <= 21)
    return base * (weekend_share if (hour // 24) % 7 >= 5 else 1.0)


def feed(
    det, start_h, hours, seed, scale=lambda h: 1.0, day=lambda h: None, daily_sd: float = 0.08
):
    """Scores of ``hours`` of readings every 10 minutes from ``start_h`` (noise: 8 % a day,
    5 % a reading, Poisson counting)."""
    rng = np.random.default_rng(seed)
    scores, today, daily = [], None, 1.0
    for i in range(int(hours * 60 / STEP_MIN)):
        h = start_h + i * STEP_MIN / 60
        if int(h // 24) != today:
            today, daily = int(h // 24), math.exp(rng.normal(0, daily_sd))
        mean = level(h) * scale(h) * daily * math.exp(rng.normal(0, 0.05))
        kwargs = {"day": day(h)} if day(h) is not None else {}
        scores.append(det.update(T0 + int(h * HOUR), float(rng.poisson(mean)), **kwargs))
    return scores


def episodes(scores, threshold=0.9) -> int:
    """Runs of scores at or above ``threshold``."""
    above = [s is not None and s >= threshold for s in scores]
    return sum(1 for i, a in enumerate(above) if a and (i == 0 or not above[i - 1]))


def test_the_first_week_raises_no_burst_of_alarms_on_its_first_weekend():
    for seed in range(3):
        assert episodes(feed(SeasonalAnomalyDetector(), 0, 9 * 24, seed)) == 0
    # Without the uncertainty of weekday hours not seen yet, the first Saturday is an anomaly:
    # what the test guards against.
    blind = SeasonalAnomalyDetector(week_spread=0.0, day_spread=0.0)
    assert episodes(feed(blind, 0, 9 * 24, 0)) >= 1


def test_a_holiday_is_scored_like_a_sunday_and_learns_its_own_offset():
    weeks = 5 * 7 * 24
    wednesday = weeks + 2 * 24  # a Wednesday as quiet as a Sunday (a public holiday)
    sunday_like = lambda h: 0.35 if wednesday <= h < wednesday + 24 else 1.0  # noqa: E731
    plain = SeasonalAnomalyDetector()
    feed(plain, 0, weeks, 1)
    assert max(s for s in feed(plain, weeks, 3 * 24, 2, sunday_like)) >= 0.9  # an alarm...
    told = SeasonalAnomalyDetector()
    feed(told, 0, weeks, 1)
    holiday = lambda h: SUNDAY_LIKE if wednesday <= h < wednesday + 24 else None  # noqa: E731
    assert max(feed(told, weeks, 3 * 24, 2, sunday_like, holiday)) < 0.9  # ... unless told
    # Holidays here are 30 % busier than Sundays: after a few, their offset from the Sunday
    # profile is learned and they are less uncertain. (No
    # day-to-day noise here: with 8 %, one unlucky holiday of six weighs on the mean.)
    busier = SeasonalAnomalyDetector()
    feed(busier, 0, 3 * 7 * 24, 5, daily_sd=0)  # three ordinary weeks: the Sundays are known
    noon = 48 + 12  # Wednesday noon of a week
    before = busier._expectation(T0 + int((3 * 7 * 24 + noon) * HOUR), SUNDAY_LIKE)
    for week in range(3, 9):
        start = week * 7 * 24
        busy_wed = lambda h, s=start: 0.35 * 1.3 if s + 48 <= h < s + 72 else 1.0  # noqa: E731
        hol = lambda h, s=start: SUNDAY_LIKE if s + 48 <= h < s + 72 else None  # noqa: E731
        assert max(feed(busier, start, 7 * 24, week, busy_wed, hol, daily_sd=0)) < 0.9
    after = busier._expectation(T0 + int((9 * 7 * 24 + noon) * HOUR), SUNDAY_LIKE)
    assert after.holiday > 0.02  # busier than the Sunday it borrows, as the holidays were
    assert after.scale < before.scale  # and more certain


def test_an_event_days_uplift_is_expected_and_not_learned_as_normal():
    weeks = 4 * 7 * 24
    doubled = lambda h: 2.0 if weeks + 24 <= h < weeks + 48 else 1.0  # noqa: E731
    event = Day(uplift=2.0, label="a concert (expected x2)")
    on_event = lambda h: event if weeks + 24 <= h < weeks + 48 else None  # noqa: E731
    plain, told = SeasonalAnomalyDetector(), SeasonalAnomalyDetector()
    for det in (plain, told):
        feed(det, 0, weeks, 3)
    assert max(feed(plain, weeks, 2 * 24, 4, doubled)) >= 0.9
    assert max(feed(told, weeks, 2 * 24, 4, doubled, on_event)) < 0.9
    # The day after, back to normal: the profile did not learn the doubled crowd as Tuesday's.
    assert max(feed(told, weeks + 48, 24, 5)) < 0.9


def test_a_sustained_level_shift_is_caught_then_learned_not_pinned():
    """A doubling that stays. (1.5 x is about five sigmas of this series' day-to-day
    variation: caught within its day about 3 times in 5, see ``crowdsafe evaluate``.)"""
    weeks = 4 * 7 * 24
    det = SeasonalAnomalyDetector()
    feed(det, 0, weeks, 6)
    shifted = feed(det, weeks + 8, 10 * 24, 7, lambda h: 2.0)
    per_day = 24 * 60 // STEP_MIN
    assert max(shifted[:per_day]) >= 0.9  # caught within a day
    assert max(shifted[-2 * per_day :]) < 0.9  # learned as the new normal a week later
    longest, run = 0, 0
    for s in shifted:
        run = run + 1 if s >= 0.99 else 0
        longest = max(longest, run)
    assert longest < per_day // 4  # not hundreds of points pinned at the top


def _caught_shifts(seeds: range) -> int:
    from streams.offline.evaluation import evaluate, score_series, synthetic

    caught = 0
    for seed in seeds:
        ts, values, events = synthetic("level-shift", seed, weeks=3)
        scores = score_series(ts, values, SeasonalAnomalyDetector())
        caught += evaluate("shift", ts, values, scores, events, merge_gap_ms=1_800_000).detected
    return caught


def test_a_one_and_a_half_fold_shift_is_caught_four_times_in_five(monkeypatch):
    """The issue's target on the evaluation's own seeded shifts (a reading a minute, 8 % day-to-
    day variation, 1.5 x from a random hour on, caught if an alarm falls within 24 h). The shift
    mean is counted per look of its own (one per 5.8 h), not per reading: without that, about
    three in five."""
    assert _caught_shifts(range(20)) >= 16
    monkeypatch.setattr("detectors.anomaly.shift_gain", lambda share: 1.0)
    assert _caught_shifts(range(20)) < 16
