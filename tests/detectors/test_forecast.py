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


def test_linear_ramp_gives_the_right_minutes_within_the_band():
    # 2000 m², from 1000 people rising 20 a minute with noise: warning (2 p/m² = 4000) in
    # (4000 - 1400) / 20 = 130 min after minute 20, critical (6000) in 230 min.
    rng = np.random.default_rng(0)
    fc = DensityForecaster(area_m2=2000, warning=2.0, critical=3.0, horizon_min=300)
    pts = [(T0 + i * 15_000, 1000 + 20 * i / 4 + rng.normal(0, 10)) for i in range(81)]
    out = feed(fc, pts)
    assert out.density == pytest.approx(0.7, abs=0.01)
    assert out.rate == pytest.approx(0.01, rel=0.1)  # 20 p/min over 2000 m²
    assert out.minutes_to_warning == pytest.approx(130, rel=0.1)
    assert out.minutes_to_critical == pytest.approx(230, rel=0.1)
    assert out.warning_low <= 130 <= out.warning_high
    assert out.critical_low <= 230 <= out.critical_high
    assert out.critical_low < out.minutes_to_critical < out.critical_high


@pytest.mark.parametrize("slope", [0.0, -15.0])
def test_flat_or_falling_is_not_heading_there(slope):
    rng = np.random.default_rng(1)
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    pts = [(T0 + i * 10_000, 1500 + slope * i / 6 + rng.normal(0, 30)) for i in range(120)]
    out = feed(fc, pts)
    assert out.minutes_to_warning is None and out.warning_low is None and out.warning_high is None
    assert out.minutes_to_critical is None and out.critical_high is None


def test_already_there_is_zero_minutes():
    fc = DensityForecaster(area_m2=100, warning=2.0, critical=3.0)
    out = feed(fc, [(T0 + i * MIN, 250 + i) for i in range(10)])
    assert out.minutes_to_warning == 0.0
    assert out.minutes_to_critical is not None and out.minutes_to_critical > 0


def test_beyond_the_horizon_is_none():
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=60)
    out = feed(fc, [(T0 + i * MIN, 100 + i) for i in range(30)])  # 1 p/min: 1870 min away
    assert out.minutes_to_warning is None


def test_gate_inflow_is_a_second_view_of_the_rate():
    # Occupancy says 10 p/min; gates agree: the band is the regression's own.
    agree = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    a = feed(agree, [(T0 + i * MIN, 1000 + 10 * i, 10) for i in range(30)])
    # Gates say 30 p/min: the rate rises and the band spans both views.
    disagree = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    d = feed(disagree, [(T0 + i * MIN, 1000 + 10 * i, 30) for i in range(30)])
    assert a.minutes_to_warning == pytest.approx((2000 - 1290) / 10, rel=0.02)
    assert d.minutes_to_warning == pytest.approx((2000 - 1290) / 20, rel=0.02)
    assert d.warning_low == pytest.approx((2000 - 1290) / 30, rel=0.05)
    assert d.warning_high == pytest.approx((2000 - 1290) / 10, rel=0.05)


def test_hourly_readings_still_give_a_trend():
    """The trend window stretches to a few sampling steps, so sparse data still forecasts."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    out = feed(fc, [(T0 + i * 60 * MIN, 500 + 100 * i) for i in range(8)])
    assert out.minutes_to_warning == pytest.approx((2000 - 1200) / 100 * 60, rel=0.05)


def test_missing_occupancy_changes_no_trend():
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0)
    feed(fc, [(T0 + i * MIN, 1000 + 10 * i) for i in range(20)])
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
    assert len(json.dumps(fc.to_state())) < 300
    for t, occ, net in pts[200:]:
        assert restored.update(t, occ, net) == fc.update(t, occ, net)


def test_area_and_thresholds_come_from_the_caller_not_from_the_state():
    """State saved under one area and thresholds, resumed under others (an edited site file):
    the forecast uses the new ones; a version 1 state's stored configuration is ignored."""
    fc = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    for minute in range(31):
        out = fc.update(minute * MIN, 1000 + 10 * minute)
    assert round(out.minutes_to_warning) == 70  # (2000 - 1300) / 10
    state = fc.to_state()
    assert "cfg" not in state
    edited = DensityForecaster.from_state(state, 2000, 1.0, 1.5, horizon_min=600)
    now = edited.forecast()
    assert now.density == pytest.approx(out.density / 2)
    assert round(now.minutes_to_warning) == 70 and round(now.minutes_to_critical) == 170
    v1 = {**state, "v": 1, "cfg": [1000.0, 2.0, 3.0, 10.0, 600.0, 1.645]}
    assert DensityForecaster.from_state(v1, 2000, 1.0, 1.5, horizon_min=600).forecast() == now


def test_invalid_thresholds_rejected():
    with pytest.raises(ValueError, match="warning <= critical"):
        DensityForecaster(area_m2=100, warning=3.0, critical=2.0)
    with pytest.raises(ValueError, match="area"):
        DensityForecaster(area_m2=0, warning=1.0, critical=2.0)


def test_a_far_jump_back_in_event_time_starts_a_new_trend():
    from detectors.forecast import DensityForecaster

    f = DensityForecaster(area_m2=1000, warning=2.0, critical=3.0, horizon_min=600)
    base = 100 * 60_000
    for minute in range(30):  # yesterday's demo: a flat zone, far ahead in event time
        f.update(base + minute * 60_000, 1000)
    for minute in range(31):  # a new run starts earlier and fills by 10 people a minute
        out = f.update(minute * 60_000, 1000 + 10 * minute)
    assert round(out.minutes_to_warning) == 70  # as if the old trend had never been
