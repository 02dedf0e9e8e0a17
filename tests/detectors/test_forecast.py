"""Behaviour of the time-to-critical-density forecaster."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.forecast import DensityForecaster

MIN = 60_000
T0 = 1_704_067_200_000


def feed(fc: DensityForecaster, points):
    out = None
    for t, occ, *net in points:
        out = fc.update(t, occ, net[0] if net else None)
    return out


def test_an_accelerating_build_up_is_foreseen_to_the_minute():
    # 1000 m², 1000 + 0.8 t² people (accelerating, with counting noise): 3000 (critical) at
    # t = 50 min. The straight line of forecaster version 2 said 11.9 min at t = 45; the
    # forecast says about 5 (a little later: the damping assumes the acceleration fades).
    rng = np.random.default_rng(0)
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    pts = [(T0 + i * 15_000, 1000 + 0.8 * (i / 4) ** 2 + rng.normal(0, 15)) for i in range(181)]
    out = feed(fc, pts)
    assert 5.0 <= out.minutes_to_critical < 6.0
    assert out.critical_low < out.minutes_to_critical < out.critical_high
    assert out.minutes_to_warning == 0.0  # 2620 people: past warning now


def test_a_steady_ramp_is_damped_not_extrapolated_for_ever():
    """Gardner & McKenzie: the present rate is assumed to fade, so a crossing is forecast
    later than a straight line would, and not at all beyond what the rate can carry."""
    fc = DensityForecaster(area_m2=1000, warning=3.0, critical=6.0)
    out = feed(fc, [(T0 + i * MIN, 1000 + 20 * i) for i in range(31)])
    straight = (3000 - 1600) / 20
    assert straight < out.minutes_to_warning < 2 * straight
    # 4400 more people at 20 a minute, fading with a 2-hour half-life: 3460 at most.
    assert out.minutes_to_critical is None


@pytest.mark.parametrize("slope", [0.0, -15.0])
def test_flat_or_falling_is_not_heading_there(slope):
    rng = np.random.default_rng(1)
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    pts = [(T0 + i * 10_000, 1500 + slope * i / 6 + rng.normal(0, 30)) for i in range(120)]
    out = feed(fc, pts)
    assert out.minutes_to_warning is None and out.warning_low is None and out.warning_high is None
    assert out.minutes_to_critical is None and out.critical_high is None


def test_already_there_is_zero_minutes_and_below_is_never_zero():
    fc = DensityForecaster(area_m2=100, warning=2.0, critical=3.0)
    out = feed(fc, [(T0 + i * MIN, 250 + 5 * i) for i in range(10)])
    assert out.minutes_to_warning == 0.0 and out.warning_low == out.warning_high == 0.0
    assert out.minutes_to_critical is not None and out.minutes_to_critical > 0
    # A crowd that rose past warning and is thinning fast: the fitted level lags above the
    # line, the readings are below it. Not there (never 0.0), and moving away (None).
    for i in range(10, 16):
        out = fc.update(T0 + i * MIN, 190 - 10 * (i - 10))
        assert out.minutes_to_warning is None, i


def test_no_future_crossing_is_claimed_past_the_threshold_or_moving_away():
    """The operator's complaints, on a surge like the demo's (a ramp past critical, a hold, a
    decay): at or over a threshold the forecast is 0.0; below it, minutes > 0 only while the
    readings are rising, and never once they have been falling for a while."""
    rng = np.random.default_rng(4)
    fc = DensityForecaster(area_m2=600, warning=4.0, critical=4.7)
    base, peak = 1080.0, 1.25 * 4.7 * 600

    def occupancy(s: float) -> float:
        w = min(s / 480, 1.0) if s < 720 else max(1.0 - (s - 720) / 360, 0.0)
        return base + (peak - base) * w

    prev = None
    falling_since = None
    for k in range(-60, 360):  # 5-second readings: 5 min calm, 8 min ramp, 4 hold, 6 decay
        s = k * 5.0
        y = occupancy(max(s, 0.0)) + rng.normal(0, 30)
        out = fc.update(T0 + int(s * 1000), y)
        for limit, minutes in ((4.0, out.minutes_to_warning), (4.7, out.minutes_to_critical)):
            if y >= limit * 600:
                assert minutes == 0.0, (s, y)
            else:
                assert minutes != 0.0, (s, y)
        if s > 720 and falling_since is None:
            falling_since = s
        if falling_since is not None and s - falling_since >= 60:
            assert out.minutes_to_warning in (None, 0.0), (s, y, out)
            assert out.minutes_to_critical in (None, 0.0), (s, y, out)
        prev = y
    assert prev is not None and out.minutes_to_critical is None


def test_beyond_the_horizon_is_none():
    pts = [(T0 + i * MIN, 1000 + 50 * i) for i in range(11)]  # 50 p/min, 500 to go: ~12 min
    near = feed(DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=60), pts)
    assert 10 < near.minutes_to_warning < 15
    far = feed(DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=10), pts)
    assert far.minutes_to_warning is None


def test_gate_inflow_is_a_second_view_of_the_rate():
    # Occupancy says 40 p/min; gates agree: the same rate and crossing.
    agree = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    a = feed(agree, [(T0 + i * MIN, 1000 + 40 * i, 40) for i in range(30)])
    gap = 3000 - 2160
    assert a.rate == pytest.approx(0.04)
    assert a.minutes_to_critical == pytest.approx(agree._crossing(gap, 40, 0), rel=1e-3)
    # Gates say 120 p/min, both views exact (no scatter): equal weights, the mean of both.
    disagree = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    d = feed(disagree, [(T0 + i * MIN, 1000 + 40 * i, 120) for i in range(30)])
    assert d.rate == pytest.approx(0.08)
    assert d.minutes_to_critical == pytest.approx(disagree._crossing(gap, 80, 0), rel=1e-3)
    # Gates saying the zone empties: not heading there, whatever the cameras say.
    empties = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    assert feed(empties, [(T0 + i * MIN, 1000 + 40 * i, -5) for i in range(30)]).rate is not None
    assert empties.forecast().minutes_to_critical is None


def test_the_steadier_view_of_the_rate_weighs_more():
    """Inverse-variance weighting (Gauss): noisy camera counts of a 40 p/min rise and exact
    gates saying 40 give 40; scattered gates (±60 a minute) barely move the cameras' rate."""
    rng = np.random.default_rng(3)
    cams = [1000 + 40 * i + rng.normal(0, 60) for i in range(30)]
    steady = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    s = feed(steady, [(T0 + i * MIN, c, 40.0) for i, c in enumerate(cams)])
    alone = feed(DensityForecaster(1000, 2.0, 3.0), [(T0 + i * MIN, c) for i, c in enumerate(cams)])
    assert abs(s.rate - 0.04) < 0.2 * abs(alone.rate - 0.04) + 1e-4
    noisy = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    gates = [40.0 + rng.normal(0, 60) + 300 * (i % 2) - 150 for i in range(30)]
    n = feed(
        noisy, [(T0 + i * MIN, c, g) for i, (c, g) in enumerate(zip(cams, gates, strict=True))]
    )
    assert abs(n.rate - alone.rate) < abs(np.mean(gates[-10:]) / 1000 - alone.rate)


def test_a_state_without_the_gates_line_still_loads():
    """Version-3 states written before the gates' line (or before its count) load; the line
    starts anew from the next inflow. Resumed from the stored mean alone it had a variance of
    0, so it outweighed the cameras and the band collapsed until it forgot that mean."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    feed(fc, [(T0 + i * MIN, 1000 + 40 * i, 40) for i in range(30)])
    full = fc.to_state()
    for old in ({k: v for k, v in full.items() if k != "g"}, {**full, "g": full["g"][:5]}):
        resumed = DensityForecaster.from_state(old, 1000, 2.0, 3.0)
        assert resumed.gate.s[0] == 0.0 and resumed.t_gate is None
        out = resumed.update(T0 + 30 * MIN, 2200, 40)
        assert out.minutes_to_critical is not None and out.critical_high > out.critical_low
    same = DensityForecaster.from_state(full, 1000, 2.0, 3.0)
    assert same.gate.s == fc.gate.s and same.t_gate == fc.t_gate


def test_a_silent_gate_is_dropped_not_extrapolated():
    """A gate whose inflow was falling goes offline while the cameras see the crowd rise: its
    line, carried on, would say the zone empties faster and faster and veto every forecast."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    feed(fc, [(T0 + i * MIN, 1000 + 25 * i, 10 - 0.5 * i) for i in range(30)])
    out = feed(fc, [(T0 + i * MIN, 1000 + 25 * i) for i in range(30, 50)])  # gate silent
    assert fc.gate.s[0] == 0.0  # dropped after two half-lives of silence
    assert out.minutes_to_warning is not None  # the cameras alone forecast again


def test_inflow_reported_at_the_same_time_is_kept_for_the_next_minutes():
    """Two gate readings of one time (or a gate a batch after the camera of that time): the
    second has no elapsed minutes to spread over, so it joins the next interval's rate."""
    split = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    split.update(T0, 1000, 0)
    split.update(T0 + MIN, 1040, 30)
    split.update(T0 + MIN, None, 20)  # same time: nothing elapsed
    split.update(T0 + 2 * MIN, 1080, 40)
    whole = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    whole.update(T0, 1000, 0)
    whole.update(T0 + MIN, 1040, 30)
    whole.update(T0 + 2 * MIN, 1080, 60)
    assert split.gate.s[3] == pytest.approx(whole.gate.s[3])  # Σ w·rate: persons, all counted


def test_the_gates_variance_does_not_depend_on_the_reading_interval():
    """Poisson gates at 60 persons a minute, read every 5 s or every minute: the line's
    variance of the rate now is that of the same minutes of counts either way."""
    rng = np.random.default_rng(7)

    def rate_variance(step_s: int) -> float:
        fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
        seen = []
        for i in range(8 * 3600 // step_s):  # 8 hours; the mean over every minute after the 1st
            fc.update(T0 + i * step_s * 1000, 1000, float(rng.poisson(step_s)))
            if i * step_s >= 3600 and i * step_s % 60 == 0:
                seen.append(fc.gate.fit()[1])
        return float(np.mean(seen))

    fine, coarse = rate_variance(5), rate_variance(60)
    assert 0.5 < fine / coarse < 2.0  # was ~10x apart (the variance of one 5-s rate)


def test_hourly_readings_still_give_a_trend():
    """The memories (and the damping) stretch to a few sampling steps, so sparse data still
    forecasts: later than a straight line (480 min), not never."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=1000)
    out = feed(fc, [(T0 + i * 60 * MIN, 500 + 100 * i) for i in range(8)])
    assert 480 < out.minutes_to_warning < 800


def test_missing_occupancy_changes_no_trend():
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    feed(fc, [(T0 + i * MIN, 1000 + 40 * i) for i in range(20)])
    before = fc.forecast()
    assert fc.update(T0 + 20 * MIN, None).minutes_to_warning is not None
    assert fc.forecast().rate == pytest.approx(before.rate)


def test_state_round_trip_resumes_identically():
    rng = np.random.default_rng(2)
    pts = [
        (T0 + i * 5000, 800 + i + rng.normal(0, 20), int(rng.integers(-2, 4))) for i in range(400)
    ]
    fc = DensityForecaster(900, warning=4.0, critical=4.7)
    feed(fc, pts[:200])
    restored = DensityForecaster.from_state(json.loads(json.dumps(fc.to_state())), 900, 4.0, 4.7)
    assert len(json.dumps(fc.to_state())) < 900
    for t, occ, net in pts[200:]:
        assert restored.update(t, occ, net) == fc.update(t, occ, net)


def test_area_and_thresholds_come_from_the_caller_not_from_the_state():
    """State saved under one area and thresholds, resumed under others (an edited site file):
    the forecast uses the new ones. Older versions' states (a straight line's sums, version 1
    with its configuration) cannot be resumed: ValueError, and the caller starts afresh."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    for minute in range(31):
        out = fc.update(minute * MIN, 1000 + 30 * minute)
    state = fc.to_state()
    assert "cfg" not in state
    edited = DensityForecaster.from_state(state, 2000, 1.0, 1.5)
    now = edited.forecast()
    assert now.density == pytest.approx(out.density / 2)
    assert now.minutes_to_warning == pytest.approx(out.minutes_to_warning)
    assert now.minutes_to_critical == pytest.approx(out.minutes_to_critical)
    for old in (
        {**state, "v": 1, "cfg": [1000.0, 2.0, 3.0, 10.0, 600.0, 1.645]},
        {**state, "v": 2},
    ):
        with pytest.raises(ValueError, match="cannot be resumed"):
            DensityForecaster.from_state(old, 2000, 1.0, 1.5)


def test_invalid_thresholds_rejected():
    with pytest.raises(ValueError, match="warning <= critical"):
        DensityForecaster(area_m2=100, warning=3.0, critical=2.0)
    with pytest.raises(ValueError, match="area"):
        DensityForecaster(area_m2=0, warning=1.0, critical=2.0)


def test_a_far_jump_back_in_event_time_starts_a_new_trend():
    from detectors.forecast import DensityForecaster

    f = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    fresh = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    base = 100 * 60_000
    for minute in range(30):  # yesterday's demo: a flat zone, far ahead in event time
        f.update(base + minute * 60_000, 1000)
    for minute in range(31):  # a new run starts earlier and fills by 30 people a minute
        out = f.update(minute * 60_000, 1000 + 30 * minute)
        want = fresh.update(minute * 60_000, 1000 + 30 * minute)
    assert out == want and out.minutes_to_warning is not None  # as if the old trend had never been
