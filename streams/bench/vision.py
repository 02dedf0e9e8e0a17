"""Camera counting speed: frames per second on one core, per method, size, with/without flow."""

from __future__ import annotations

import statistics
import time

import cv2
import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig
from detectors.vision.counters import make_counter
from detectors.vision.density import IDENTITY_MODEL
from detectors.vision.flow import FlowMeter
from streams.config.paths import shared_data_dir
from streams.edge.capture import image_files

SIZES = ((640, 360), (768, 576))


def _frames(size: tuple[int, int], n: int) -> list[np.ndarray]:
    pets = shared_data_dir("vision", "pets09-s2l1", "img1")
    files = image_files(pets)[:n] if pets is not None and pets.is_dir() else []
    if files:
        return [cv2.resize(cv2.imread(str(f)), size) for f in files]
    rng = np.random.default_rng(0)  # no shared data: noise frames still time the code paths
    return [rng.integers(0, 255, (size[1], size[0], 3), np.uint8) for _ in range(n)]


def _fps(method: str, size: tuple[int, int], flow: bool, frames: list[np.ndarray]) -> float:
    w, h = size
    cfg = CameraConfig(
        method=method,
        polygons={"all": [(0, 0), (w, 0), (w, h), (0, h)]},
        person_height=[(h * 0.3, h * 0.1), (h * 0.7, h * 0.19)],
        hog={"upscale": 1.0},  # the frame as it is: "auto" would upscale these small people
    )
    # Timing only: any fitted regression costs the same as the real one (a dot product).
    calibration = Calibration(
        camera_id="bench", method=method, created="", frames=0, density=IDENTITY_MODEL
    )
    counter = make_counter(cfg, calibration)
    meter = FlowMeter(cfg) if flow else None
    times = []
    for i, frame in enumerate(frames):
        t = time.perf_counter()
        counter.count(frame)
        if meter is not None and counter.layout is not None:
            meter.update(frame, i * 100, counter.layout)
        times.append(time.perf_counter() - t)
    return 1 / statistics.median(times[1:])


def run(quick: bool) -> dict:
    cv2.setNumThreads(1)
    n = 6 if quick else 30
    out: dict[str, object] = {"threads": 1, "frames": n, "source": "PETS09-S2L1 resized"}
    for size in SIZES:
        frames = _frames(size, n)
        for method in ("hog", "density"):
            for flow in (False, True):
                key = f"{method}_{size[0]}x{size[1]}_{'flow' if flow else 'noflow'}_fps"
                out[key] = round(_fps(method, size, flow, frames), 2)
    out["note"] = "hog at upscale 1.0 (the PETS site uses 1.6: about 2.5x slower); dnn: no model"
    return out
