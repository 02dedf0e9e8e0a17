"""Fitting a camera's counters on labelled frames: density regression, HOG threshold, and the\ncross-validated comparison that picks the camera's method."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import get_args

import numpy as np

from detectors.vision.calibration import Calibration, MethodChoice
from detectors.vision.config import CameraConfig, Method
from detectors.vision.density import FeatureExtractor, fit_linear, predict
from detectors.vision.metrics import mae

HOG_THRESHOLDS = (-0.25, 0.0, 0.25, 0.5)
METHODS = get_args(Method)  # ties go to the one named first


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


def contiguous_blocks(n: int, folds: int) -> list[np.ndarray]:
    """Positions 0..n-1 cut into ``folds`` contiguous blocks of near-equal length.

    Neighbouring frames are near copies: a held-out frame must not have its neighbours in the
    training set, so folds are blocks of time, never shuffled frames.

    >>> [b.tolist() for b in contiguous_blocks(7, 3)]
    [[0, 1, 2], [3, 4], [5, 6]]
    """
    return [b for b in np.array_split(np.arange(n), folds) if len(b)]


def cv_by_blocks(
    errors_at: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int, folds: int
) -> np.ndarray:
    """Held-out errors of every position: ``errors_at(train, test)`` fits on ``train`` and
    returns the errors on ``test`` (positions), once per contiguous block.

    >>> cv_by_blocks(lambda train, test: test * 0.0 + len(train), 4, 2).tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    out = np.zeros(n)
    for test in contiguous_blocks(n, folds):
        train = np.setdiff1d(np.arange(n), test)
        out[test] = errors_at(train, test)
    return out


def _labelled(truth: dict[str, Sequence[float | None]], n: int) -> list[int]:
    return [i for i in range(n) if any(c[i] is not None for c in truth.values())]


def _count_errors(
    counts: Sequence[dict[str, float]],
    frames: Sequence[int],
    truth: dict[str, Sequence[float | None]],
) -> np.ndarray:
    """|count - truth| of each frame, averaged over its labelled zones (counts rounded, as sent)."""
    out = []
    for got, i in zip(counts, frames, strict=True):
        errs = [
            abs(max(0, round(got.get(z, 0.0))) - c[i]) for z, c in truth.items() if c[i] is not None
        ]
        out.append(float(np.mean(errs)))
    return np.asarray(out)


def compare_methods(
    config: CameraConfig,
    frames: Sequence[np.ndarray],
    truth: dict[str, Sequence[float | None]],
    feats: Sequence[dict[str, np.ndarray]],
    *,
    folds: int = 5,
    max_frames: int = 150,
    ridge: float = 1.0,
    hog: bool = True,
    model: bytes | None = None,
    no_model: str | None = None,
    metrics: dict[str, float] | None = None,
) -> tuple[MethodChoice, float | None]:
    """Cross-validated MAE of each counting method on the labelled frames; the winner, and the
    HOG hit threshold best on all of them (None when HOG was not compared).

    Up to ``max_frames`` labelled frames, evenly spread, cut into ``folds`` contiguous blocks
    (leave one block out). ``density`` refits its regression without the held-out block (its
    features from every labelled frame outside it); ``hog`` picks its hit threshold without it;
    ``dnn`` (when ``model`` holds its ONNX bytes; else ``no_model`` says why not) has nothing
    to fit. Standard k-fold CV with
    blocked folds for dependent samples: Roberts et al. 2017, "Cross-validation strategies for
    data with temporal, spatial, hierarchical, or phylogenetic structure" (Ecography).
    """
    metrics = {} if metrics is None else metrics
    labelled = _labelled(truth, len(frames))
    idx = labelled[:: max(1, int(np.ceil(len(labelled) / max_frames)))]
    folds = max(2, min(folds, len(idx)))
    compared: dict[str, float] = {}
    skipped: dict[str, str] = {}
    best_thr = None

    # density: refit on every labelled frame outside the held-out block's span of time.
    rows = [
        (i, feats[i][z], c[i])
        for z, c in truth.items()
        for i in labelled
        if c[i] is not None and z in feats[i]
    ]
    row_frame = np.asarray([r[0] for r in rows])
    x = np.asarray([r[1] for r in rows])
    y = np.asarray([float(r[2]) for r in rows])
    pos = np.asarray(idx)

    def density_errors(_train: np.ndarray, test: np.ndarray) -> np.ndarray:
        outside = (row_frame < pos[test].min()) | (row_frame > pos[test].max())
        fitted = fit_linear(x[outside], y[outside], ridge)
        got = [{z: float(predict(fitted, f)[0]) for z, f in feats[i].items()} for i in pos[test]]
        return _count_errors(got, pos[test], truth)

    compared["density"] = float(cv_by_blocks(density_errors, len(idx), folds).mean())

    if hog:
        from detectors.vision.hog import HogCounter

        counter = HogCounter(config)
        sweeps = [counter.sweep(frames[i], HOG_THRESHOLDS) for i in idx]
        err = {t: _count_errors([sw[t] for sw in sweeps], idx, truth) for t in HOG_THRESHOLDS}
        for t in HOG_THRESHOLDS:
            metrics[f"hog_mae_thr_{t:+.2f}"] = float(err[t].mean())

        def pick(sel: np.ndarray) -> float:
            return min(
                HOG_THRESHOLDS,
                key=lambda t: (err[t][sel].mean(), abs(t - config.hog.hit_threshold)),
            )

        compared["hog"] = float(
            cv_by_blocks(lambda train, test: err[pick(train)][test], len(idx), folds).mean()
        )
        best_thr = pick(np.arange(len(idx)))
    else:
        skipped["hog"] = "not asked (--no-hog)"

    if model is not None:
        from detectors.vision.dnn import DnnCounter

        dnn = DnnCounter(config, model=model)
        compared["dnn"] = float(
            _count_errors([dnn.estimate(frames[i]) for i in idx], idx, truth).mean()
        )
    else:
        skipped["dnn"] = no_model or "no detector model: no `model` (ONNX file) in [sources.camera]"

    winner = min(compared, key=lambda m: (compared[m], METHODS.index(m)))
    choice = MethodChoice(
        method=winner,
        mae_cv=round(compared[winner], 4),
        folds=folds,
        frames=len(idx),
        compared={m: round(v, 4) for m, v in compared.items()},
        skipped=skipped,
    )
    return choice, best_thr


def calibrate(
    camera_id: str,
    config: CameraConfig,
    frames: Sequence[np.ndarray],
    truth: dict[str, Sequence[float | None]],
    check_hog: bool = True,
    ridge: float = 1.0,
    *,
    folds: int = 5,
    max_frames: int = 150,
    model: bytes | None = None,
    no_model: str | None = None,
) -> Calibration:
    """Fit the density regression (all zones pooled), compare the methods by cross-validated
    error (``compare_methods``) and keep the winner and the HOG hit threshold.

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
    density = fit_linear(x, y, ridge)
    metrics = {
        "density_mae_train": mae(predict(density, x), y),
        "density_mae_cv2": blocked_cv_mae(x, y, 2, ridge),
        "density_mae_cv5": blocked_cv_mae(x, y, 5, ridge) if len(y) >= 10 else float("nan"),
        "mean_count": float(y.mean()),
    }
    chosen, thr = compare_methods(
        config, frames, truth, feats, folds=folds, max_frames=max_frames, ridge=ridge,
        hog=check_hog, model=model, no_model=no_model, metrics=metrics,
    )  # fmt: skip
    return Calibration(
        camera_id=camera_id,
        method=config.method,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        frames=len(frames),
        frame_size=(int(frames[0].shape[1]), int(frames[0].shape[0])),
        density=density,
        hog={} if thr is None else {"hit_threshold": thr},
        metrics={k: round(v, 4) for k, v in metrics.items() if v == v},
        chosen=chosen,
    )
