"""Fitting a camera's counters on labelled frames: density regression and HOG threshold."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig
from detectors.vision.density import FeatureExtractor, fit_linear, predict
from detectors.vision.metrics import mae

HOG_THRESHOLDS = (-0.25, 0.0, 0.25, 0.5)


def density_features(
    config: CameraConfig, frames: Sequence[np.ndarray], prime: bool = True
) -> list[dict[str, np.ndarray]]:
    """Features of every frame in order; the background primed from the clip's median."""
    fx = FeatureExtractor(config)
    if prime:
        step = max(1, len(frames) // 40)
        fx.prime(list(frames[::step]))
    return [fx(f) for f in frames]


def blocked_cv_mae(x: np.ndarray, y: np.ndarray, folds: int = 2, ridge: float = 1.0) -> float:
    """MAE of the density regression, trained on all but one contiguous block, tested on it.

    Contiguous blocks rather than shuffled frames: neighbouring frames are near copies, and a
    shuffled split would test on frames it had all but seen.
    """
    edges = np.linspace(0, len(y), folds + 1).astype(int)
    errs = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        train = np.r_[0:a, b : len(y)]
        model = fit_linear(x[train], y[train], ridge)
        errs.append(np.abs(predict(model, x[a:b]) - y[a:b]))
    return float(np.mean(np.concatenate(errs)))


def calibrate(
    camera_id: str,
    config: CameraConfig,
    frames: Sequence[np.ndarray],
    truth: dict[str, Sequence[float | None]],
    check_hog: bool = True,
    hog_frames: int = 30,
    ridge: float = 1.0,
) -> Calibration:
    """Fit the density regression (all zones pooled) and pick the HOG hit threshold.

    ``truth[zone][i]`` is the count of frame ``i`` (None where unlabelled).
    """
    feats = density_features(config, frames)
    xs, ys = [], []
    for zone, counts in truth.items():
        for i, n in enumerate(counts):
            if n is not None and zone in feats[i]:
                xs.append(feats[i][zone])
                ys.append(float(n))
    if len(ys) < 4:
        raise ValueError(f"need four or more labelled frames, got {len(ys)}")
    x, y = np.asarray(xs), np.asarray(ys)
    model = fit_linear(x, y, ridge)
    metrics = {
        "density_mae_train": mae(predict(model, x), y),
        "density_mae_cv2": blocked_cv_mae(x, y, 2, ridge),
        "density_mae_cv5": blocked_cv_mae(x, y, 5, ridge) if len(y) >= 10 else float("nan"),
        "mean_count": float(y.mean()),
    }
    hog: dict[str, float] = {}
    if check_hog:
        best = _check_hog(config, frames, truth, hog_frames, metrics)
        if best is not None:
            hog["hit_threshold"] = best
    return Calibration(
        camera_id=camera_id,
        method=config.method,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        frames=len(frames),
        density=model,
        hog=hog,
        metrics={k: round(v, 4) for k, v in metrics.items() if v == v},
    )


def _check_hog(
    config: CameraConfig,
    frames: Sequence[np.ndarray],
    truth: dict[str, Sequence[float | None]],
    n: int,
    metrics: dict[str, float],
) -> float | None:
    """MAE of HOG at a few hit thresholds on up to ``n`` labelled frames; the best one."""
    from detectors.vision.hog import HogCounter

    idx = [i for i in range(len(frames)) if any(c[i] is not None for c in truth.values())]
    idx = idx[:: max(1, len(idx) // n)][:n]
    if not idx:
        return None
    results = {}
    for thr in HOG_THRESHOLDS:
        cfg = config.model_copy(
            update={"hog": config.hog.model_copy(update={"hit_threshold": thr})}
        )
        counter = HogCounter(cfg)
        errs = []
        for i in idx:
            counts = counter.count(frames[i])
            errs += [abs(counts[z] - c[i]) for z, c in truth.items() if c[i] is not None]
        results[thr] = float(np.mean(errs))
        metrics[f"hog_mae_thr_{thr:+.2f}"] = results[thr]
    return min(results, key=lambda t: (results[t], abs(t - config.hog.hit_threshold)))
