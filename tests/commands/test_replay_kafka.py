"""History through the live pipeline: ``crowdsafe replay`` via Kafka scores as ``backtest`` does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from streams.config.paths import bundled_site

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
MELBOURNE = ROOT.parent / "shared" / "data" / "pedestrian" / "melbourne-2012-2015"
SENSOR = MELBOURNE / "sensor_06_Flinders_Street_Station_Underpass.csv"


@pytest.mark.skipif(not SENSOR.exists(), reason="shared Melbourne counts not present")
def test_replay_through_kafka_gives_the_backtest_scores(pipeline, tmp_path):
    # Three weeks around New Year's Eve 2013 (a warm-up day, then real scores).
    lines = SENSOR.read_text().splitlines()
    header, rows = lines[0], [ln for ln in lines[1:] if "2013-12-10" <= ln[:10] <= "2014-01-01"]
    series = tmp_path / "flinders.csv"
    series.write_text("\n".join([header, *rows]) + "\n")
    pipeline.start_worker()

    replay = pipeline.cli("replay", str(series), "--value-col", "count", "--zone", "ticket-hall")
    assert replay.returncode == 0, replay.stderr
    out = tmp_path / "scores.csv"
    backtest = pipeline.cli(
        "backtest",
        str(series),
        "--value-col",
        "count",
        "--area",
        "2500",
        "--kind",
        "queuing",
        "--utc-offset-min",
        "480",
        # The site's calendar, as the worker has it: 2014-01-01 is a public holiday in China.
        "--calendar",
        str(pipeline.env.get("CROWDSAFE_SITE") or bundled_site()),
        "--out",
        str(out),
    )
    assert backtest.returncode == 0, backtest.stderr
    with out.open() as f:
        offline = list(csv.DictReader(f))
    assert len(offline) == len(rows)

    scored = [r for r in offline if r["value"]]
    states = pipeline.read("zone-state", until=lambda s: len(s) >= len(scored), timeout=120)
    assert len(states) == len(scored)  # one zone state per replayed reading, none lost
    for row, state in zip(scored, states, strict=True):
        assert state["occupancy"] == float(row["value"])
        assert state["density"] == pytest.approx(float(row["density"]), abs=1e-4)
        assert state["anomaly_score"] == pytest.approx(float(row["anomaly_score"]), abs=1e-4)
        expected = float(row["minutes_to_critical"]) if row["minutes_to_critical"] else None
        assert state["minutes_to_critical"] == pytest.approx(expected, abs=0.051)
    scores = [s["anomaly_score"] for s in states]
    assert max(scores) > 0.5 and sum(s > 0.01 for s in scores) >= 50  # not just warm-up zeros
