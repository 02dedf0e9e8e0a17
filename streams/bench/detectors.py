"""Cost of one detector update (µs, median of repetitions) and state size per zone (bytes)."""

from __future__ import annotations

import random
import statistics
import time

import msgspec

from detectors.alerting import Episode
from detectors.anomaly import SeasonalAnomalyDetector
from detectors.forecast import DensityForecaster
from streams.zone.state import (
    AnomalyState,
    EpisodeState,
    ForecastState,
    SourceState,
    ZoneState,
    encode_state,
)


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


def _zone_state_bytes(det: SeasonalAnomalyDetector, fc: DensityForecaster, ts: int) -> int:
    """A full zone's table entry: two cameras and a gate, both detectors warmed up, all four
    alert episodes open (the largest a zone of three sources gets)."""
    seq = time.time_ns() // 1000  # as the simulator numbers readings: 16 digits
    sources = {
        "cam-entrance-east": SourceState("camera", seq, ts, estimate=812.0, estimate_ts=ts),
        "cam-entrance-east-2": SourceState("camera", seq, ts, estimate=790.5, estimate_ts=ts),
        "gate-entrance-east": SourceState("gate", seq, ts, flow_ts=ts),
    }
    open_ = Episode("critical", ts - 600_000, ts - 600_000, ts - 5_000)
    kinds = ("density", "anomaly", "forecast", "source-offline")
    state = ZoneState(
        ts=ts,
        arrived_ms=ts,
        gate_occupancy=801.0,
        sources=sources,
        episodes={k: EpisodeState.of(open_) for k in kinds},
        anomaly=AnomalyState.of(det.to_state()),
        forecast=ForecastState.of(fc.to_state()),
    )
    return len(encode_state(state))


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
        "anomaly_state_bytes": len(msgspec.msgpack.encode(AnomalyState.of(det.to_state()))),
        "forecast_state_bytes": len(msgspec.msgpack.encode(ForecastState.of(fc.to_state()))),
        "state_bytes_per_zone": _zone_state_bytes(det, fc, data[-1][0]),
        "note": "state: msgpack as the worker's table stores it (v1 JSON: ~3.5 KB per zone)",
    }
