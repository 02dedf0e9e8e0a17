"""Camera counting accuracy: MAE per method on the shared MOT15 clips, as delivered at their
own size and downscaled to 480x360 (what a cheaper stream sends).

Each method runs as the camera would: ``hog`` with the site's settings and no fitting (and with
its hit threshold picked by ``crowdsafe calibrate``'s cross-validation), ``density`` fitted and
tested by the same leave-one-block-out cross-validation. Ground truth: MOT15 boxes whose feet
are in the zone polygon (CC BY-NC-SA 3.0; see ../shared/data/SOURCES.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.vision.config import CameraConfig, HogSettings
from detectors.vision.density import fit_linear, predict, resize_to
from detectors.vision.fitting import compare_methods, cv_by_blocks, density_features
from detectors.vision.metrics import truth_counts
from streams.config.paths import bundled_site, shared_data_dir
from streams.edge.camera import load_camera_config
from streams.edge.capture import Frame, FrameSource
from streams.offline.vision_truth import read_mot_boxes

# (name, source id in pets09-demo.toml, frames, ground truth) under shared/data/vision/
CLIPS = (
    ("pets", "pets-cam1", "pets09-s2l1/img1", "pets09-s2l1/gt_frames_001-150.txt"),
    ("tud", "tud-cam", "tud-campus/TUD-Campus.mp4", "tud-campus/gt/gt.txt"),
)
SMALL = (480, 360)
FOLDS = 5


def _clip(frames_at: str, gt_at: str, zone: str, polygon: list, step: int):
    root = shared_data_dir("vision")
    if root is None or not (root / frames_at).exists():
        return None
    images = [f.image for f in FrameSource(str(root / frames_at), fps=25) if isinstance(f, Frame)]
    numbers = list(range(1, len(images) + 1, step))
    truth = truth_counts(read_mot_boxes(root / gt_at), numbers, polygon)
    return [images[n - 1] for n in numbers], {zone: [float(c) for c in truth]}


def _mean_baseline(counts: list[float], folds: int) -> float:
    """MAE of predicting the training blocks' mean count (rounded), cross-validated alike."""
    y = np.asarray(counts)
    errs = cv_by_blocks(lambda tr, te: np.abs(np.round(y[tr].mean()) - y[te]), len(y), folds)
    return float(errs.mean())


def _methods(config: CameraConfig, frames: list, truth: dict, tag: str) -> dict[str, object]:
    """MAE per method on ``frames``; keys end in ``tag`` (the frame size)."""
    feats = density_features(config, frames)
    out: dict[str, object] = {}
    variants = {"site": config.hog, "auto": HogSettings()}
    if config.hog == HogSettings():
        del variants["site"]  # the site keeps the defaults
    for name, hog in variants.items():
        metrics: dict[str, float] = {}
        cfg = config.model_copy(update={"hog": hog})
        choice, _ = compare_methods(cfg, frames, truth, feats, folds=FOLDS,
                                    max_frames=len(frames), metrics=metrics)  # fmt: skip
        out[f"hog_{name}_{tag}_mae"] = round(metrics[f"hog_mae_thr_{hog.hit_threshold:+.2f}"], 3)
        out[f"hog_{name}_cv_{tag}_mae"] = choice.compared["hog"]
    out[f"density_cv_{tag}_mae"] = choice.compared["density"]
    out[f"chosen_{tag}"] = choice.method
    out[f"mean_baseline_cv_{tag}_mae"] = round(_mean_baseline(next(iter(truth.values())), FOLDS), 3)
    return out


def _density_across_sizes(config: CameraConfig, frames: list, small: list, y: list) -> dict:
    """Regression fitted on the first half at full size, tested on the second half of a small
    stream: as delivered, and brought to the fitted size as the density counter does."""
    half = len(y) // 2
    truth = np.asarray(y)
    full = np.asarray([next(iter(f.values())) for f in density_features(config, frames)])
    model = fit_linear(full[:half], truth[:half])
    size = (frames[0].shape[1], frames[0].shape[0])
    out = {}
    for tag, images in (
        ("as_delivered", small),
        ("brought_to_size", [resize_to(f, size) for f in small]),
    ):
        x = np.asarray([next(iter(f.values())) for f in density_features(config, images)])
        out[tag] = round(float(np.abs(np.round(predict(model, x[half:])) - truth[half:]).mean()), 3)
    return out


def run(quick: bool) -> dict:
    cv2.setNumThreads(1)
    step = 5 if quick else 1
    out: dict[str, object] = {"threads": 1, "folds": FOLDS, "every_nth_frame": step}
    site = bundled_site("pets09-demo.toml")
    for name, source, frames_at, gt_at in CLIPS:
        config = load_camera_config(site, source)
        zone, polygon = next(iter(config.polygons.items()))
        clip = _clip(frames_at, gt_at, zone, polygon, step)
        if clip is None:
            out[f"{name}_skipped"] = f"no shared frames at ../shared/data/vision/{frames_at}"
            continue
        frames, truth = clip
        h, w = frames[0].shape[:2]
        small = [cv2.resize(f, SMALL, interpolation=cv2.INTER_AREA) for f in frames]
        out[f"{name}_frames"] = len(frames)
        for tag, images in ((f"{w}x{h}", frames), (f"{SMALL[0]}x{SMALL[1]}", small)):
            out.update({f"{name}_{k}": v for k, v in _methods(config, images, truth, tag).items()})
        across = _density_across_sizes(config, frames, small, next(iter(truth.values())))
        for k, v in across.items():
            out[f"{name}_density_fit_{w}x{h}_test_{SMALL[0]}x{SMALL[1]}_{k}_mae"] = v
    out["note"] = (
        "hog_site: the site's [hog] table (PETS: upscale 1.6 on 768x576); hog_auto: the defaults "
        "(upscale from person_height); _cv: hit threshold picked without the held-out block; "
        "dnn: no model"
    )
    return out
