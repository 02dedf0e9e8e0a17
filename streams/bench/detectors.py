"""Cost of one detector update (µs, median of repetitions) and state size per zone (bytes)."""

from __future__ import annotations

import json
import random
import statistics
import time

from detectors.anomaly import SeasonalAnomalyDetector
from detectors.forecast import DensityForecaster


def _readings(n: int) -> list[tuple[int, float, float]]:
    """A zone read every 2-8 s: a daily rhythm with noise, and gate net inflow."""
    rng = random.Random(7)
    t, out = 1_704_067_200_000, []
    for i in range(n):
        t += rng.randint(2000, 8000)
        hour = t / 3_600_000 % 24
        level = 800 + 600 * abs(12 - hour) / 12
        out.append((t, max(0.0, rng.gauss(level, 30)), float(rng.randint(-3, 3))))
        if i % 997 == 0:  # now and then a missing reading
            out[-1] = (t, float("nan"), 0.0)
    return out


def _time_per_update(make, feed, data, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        obj = make()
        start = time.perf_counter()
        feed(obj, data)
        runs.append((time.perf_counter() - start) / len(data) * 1e6)
    return runs


def _feed_anomaly(det: SeasonalAnomalyDetector, data) -> None:
    update = det.update
    for t, v, _ in data:
        update(t, v)


def _feed_forecast(fc: DensityForecaster, data) -> None:
    update = fc.update
    for t, v, net in data:
        update(t, v, net)


def run(quick: bool) -> dict:
    n, repeats = (20_000, 3) if quick else (100_000, 7)
    data = _readings(n)
    anomaly = _time_per_update(SeasonalAnomalyDetector, _feed_anomaly, data, repeats)
    forecast = _time_per_update(
        lambda: DensityForecaster(5000.0, 2.0, 3.0), _feed_forecast, data, repeats
    )
    det, fc = SeasonalAnomalyDetector(), DensityForecaster(5000.0, 2.0, 3.0)
    _feed_anomaly(det, data)
    _feed_forecast(fc, data)
    return {
        "updates": n,
        "repeats": repeats,
        "anomaly_update_us": round(statistics.median(anomaly), 3),
        "forecast_update_us": round(statistics.median(forecast), 3),
        "anomaly_state_bytes": len(json.dumps(det.to_state(), separators=(",", ":"))),
        "forecast_state_bytes": len(json.dumps(fc.to_state(), separators=(",", ":"))),
    }
