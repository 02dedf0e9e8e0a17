"""The evaluation's metrics count what they say they count."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from streams.config.paths import shared_data_dir
from streams.offline.evaluation import (
    DAY_MS,
    HOUR_MS,
    MELBOURNE_EVENTS,
    MELBOURNE_KNOWN,
    Window,
    evaluate,
    first_crossings,
    synthetic,
    synthetic_series,
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


def _policy():
    from streams.config.paths import bundled_site
    from streams.config.site import load_site
    from streams.offline.backtest import SeriesPolicy

    return SeriesPolicy.for_series(load_site(bundled_site()), "walkway", 600.0)


def test_forecast_alerts_are_false_only_when_no_crossing_follows():
    from detectors.forecast import DensityForecaster
    from streams.offline.evaluation import MINUTE_MS, forecast_alerts

    def series(top: float) -> tuple[list[int], list[float]]:
        # An hour flat at 1000 people, then 40 more a minute up to ``top``, then flat.
        ts = [i * MINUTE_MS for i in range(180)]
        return ts, [min(1000.0 + 40.0 * max(i - 60, 0), top) for i in range(180)]

    crossing = forecast_alerts(*series(2000.0), DensityForecaster(600.0, 2.0, 3.0), _policy())
    assert (crossing.raised, crossing.false) == (1, 0)  # critical (1800) reached: foreseen
    short = forecast_alerts(*series(1700.0), DensityForecaster(600.0, 2.0, 3.0), _policy())
    assert (short.raised, short.false) == (1, 1)  # stopped short of it: a false alert
    assert abs(short.weeks - 179 / (7 * 24 * 60)) < 1e-9


def test_forecaster_on_the_synthetic_build_ups_and_normal_zones():
    """`crowdsafe evaluate`'s forecast metrics on two seeds, loosely bounded by what the
    forecaster measures on them: every build-up crossing counted, some foreseen 5 minutes
    ahead, errors of minutes, false alerts on the normal zones about one a week at most."""
    from streams.commands.evaluate import BUILD_UPS, _forecasts
    from streams.config.paths import bundled_site
    from streams.config.site import load_site

    site = load_site(bundled_site())
    w = site.defaults.thresholds["walkway"]
    runs, alerts = _forecasts(range(2), site, (w.warning, w.critical))
    assert [(r.scenario, r.gate) for r in runs] == [
        (scenario, gate) for scenario, _ in BUILD_UPS for gate in (False, True)
    ]
    for run in runs:
        five = next(a for a in run.leads if a.lead_min == 5.0)
        assert five.crossings == run.crossed >= 4
        assert five.forecasts >= 2
        assert five.median_abs_error is not None and five.median_abs_error < 6.0
        assert five.coverage is not None and five.coverage >= 0.6  # the band means something
        assert run.floor[-1].median_abs_error is not None
        assert len(run.ahead) >= 2
    for a in alerts.values():
        assert a.weeks > 9 and a.false_per_week <= 1.6


def test_the_accelerating_build_up_crosses_critical_and_speeds_up():
    s = synthetic_series("accelerating-build-up", seed=4, weeks=3)
    assert len(s.events) == 4
    limit = 3.0 * 600.0
    assert first_crossings(s.ts, s.values, s.events, limit)  # it crosses at least once
    for w in s.events:
        inside = [i for i, t in enumerate(s.ts) if w.start_ms <= t <= w.start_ms + 3_600_000]
        rise = np.diff(s.trend[inside])
        half = len(rise) // 2
        assert rise[half:].sum() > 1.5 * rise[:half].sum() > 0  # convex: faster and faster


def test_the_gate_inflow_integrates_to_the_crowds_change_within_counting_noise():
    """Over half-hour windows the gates' net count is the crowd's change give or take the
    Poisson noise of everyone who passed in and out (a crowd turning over every DWELL_S)."""
    from streams.offline.evaluation import DWELL_S

    s = synthetic_series("slow-build-up", seed=5, weeks=3)
    crowd = s.trend * np.exp(s.ar)
    gate = np.cumsum(s.inflow)
    t = np.array(s.ts) / 1000.0
    z = []
    for a in range(1000, len(t) - 40, 300):
        b = a + 30
        passed = 2.0 * crowd[a:b].mean() * (t[b] - t[a]) / DWELL_S
        z.append(((gate[b] - gate[a]) - (crowd[b] - crowd[a])) / np.sqrt(passed + 1.0))
    z = np.abs(np.array(z))
    assert len(z) > 50 and np.median(z) < 1.0 and np.percentile(z, 95) < 3.0
    assert synthetic_series("slow-build-up", seed=5, weeks=3).inflow == s.inflow


def test_a_forecaster_given_the_gate_is_no_worse_on_the_accelerating_build_ups():
    from detectors.forecast import DensityForecaster
    from streams.offline.evaluation import forecast_accuracy

    errors = {}
    for gate in (False, True):
        five = []
        for seed in (6, 7):
            s = synthetic_series("accelerating-build-up", seed)
            fc = DensityForecaster(600.0, 2.0, 3.0)
            inflow = s.inflow if gate else None
            five += forecast_accuracy(s.ts, s.values, s.events, fc, inflow=inflow)[-1].abs_errors
        errors[gate] = float(np.median(five))
    assert errors[True] <= errors[False] + 0.25


def test_evaluate_shows_progress_per_section_and_ends_with_what_each_found(
    tmp_path, monkeypatch, capsys
):
    """`crowdsafe evaluate` on 100 days of one Melbourne sensor (Moomba 2012 in them), one
    synthetic scenario and one forecast seed: a progress line per section (every step shown
    here, as a log would every 10 s), a summary line per section that agrees with the report,
    and where the report went."""
    from streams.cli import main
    from streams.commands import evaluate as command
    from streams.ops.progress import Progress

    data = shared_data_dir("pedestrian")
    sensor = data / "melbourne-2012-2015" / "sensor_07_Birrarung_Marr.csv" if data else None
    if sensor is None or not sensor.exists():
        pytest.skip("shared pedestrian data not present")
    melbourne = tmp_path / "data" / "melbourne-2012-2015"
    melbourne.mkdir(parents=True)
    rows = sensor.read_text().splitlines()[: 1 + 100 * 24]
    (melbourne / sensor.name).write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(command, "SCENARIOS", ("surge",))
    monkeypatch.setattr(command, "Progress", functools.partial(Progress, every_s=0.0))
    out = tmp_path / "eval.md"
    assert main(["evaluate", "--quick", "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "evaluate: Melbourne sensors: 1/1 (100 %)" in err
    assert "evaluate: synthetic runs: 1/1 (100 %)" in err
    assert "evaluate: forecast seeds: 1/1 (100 %)" in err
    # The Melbourne summary says what the report's row of all sensors says.
    row = next(r for r in out.read_text().splitlines() if r.startswith("| all five sensors |"))
    detected = row.split("|")[3].strip()
    assert detected.endswith("/1")  # the one event in these days: Moomba 2012
    summaries = [line for line in err if not re.search(r"\(\d+ %\)$", line)]
    assert summaries[0].startswith(f"evaluate: Melbourne, 1 sensors: {detected} events detected")
    assert summaries[1] == "evaluate: CalIt2: no files found"
    assert summaries[2].startswith("evaluate: synthetic, 1 runs of 1 scenarios: ")
    assert summaries[3].startswith("evaluate: forecast, 1 seeds: ")
    assert re.fullmatch(rf"evaluate: done in \d+ s, report written to {re.escape(str(out))}",
                        summaries[-1])  # fmt: skip
    assert len(summaries) == 5
