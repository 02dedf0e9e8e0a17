"""``hog``: OpenCV's HOG + linear SVM people detector, for sparse scenes.

Dalal & Triggs 2005, "Histograms of Oriented Gradients for Human Detection" (CVPR); windows from
OpenCV's ``HOGDescriptor_getDefaultPeopleDetector`` (INRIA) or ``getDaimlerPeopleDetector``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig, HogSettings
from detectors.vision.counters import DetectionCounter, ZoneLayout, register

# A detection window is taller than the person it holds: the INRIA windows (64x128) were cut
# with about 16 px of margin above the head and below the feet (Dalal & Triggs 2005, sec. 3).
_PERSON_IN_WINDOW = {"default": 96 / 128, "daimler": 72 / 96}
_WINDOW = {"default": (64, 128), "daimler": (48, 96)}  # (width, height) px
# Bounds of the upscale the geometry may ask for: below 0.5 HOG's 8 px cells blur a person's
# outline away; above 4 a detection needs more pixels than the camera has.
UPSCALE_RANGE = (0.5, 4.0)


class HogPlan(NamedTuple):
    """How HOG runs on one frame size, all in pixels of the upscaled crop."""

    upscale: float
    win_stride: int
    padding: int
    nlevels: int  # pyramid levels: the largest window is winSize * pyramid_scale ** (nlevels-1)


def hog_plan(
    settings: HogSettings,
    far_px: float | None,
    near_px: float | None,
    frame_scale: float = 1.0,
) -> HogPlan:
    """HOG settings for people ``far_px``..``near_px`` tall in the frame as delivered.

    Dalal & Triggs 2005 (sec. 3, 6.6): the window finds people of its own height and larger (by
    the image pyramid), not smaller, and its stride is in window pixels (8 of 128). So: upscale
    until the far people (``far_px``) are the window's person, keep the stride and padding at the
    same fraction of the person (finer when the upscale is capped and people stay small), and
    stop the pyramid once windows outgrow the nearest people (``near_px``) by the size filter's
    ``max_height_ratio``. A fixed ``upscale`` was chosen on frames of the configured size:
    ``frame_scale`` (delivered rows / configured rows) divides it.

    >>> s = HogSettings()
    >>> hog_plan(s, 48.0, 96.0)
    HogPlan(upscale=2.0, win_stride=8, padding=8, nlevels=28)
    >>> hog_plan(s, 30.0, 60.0)  # the same scene at 5/8 the size: 8/5 the upscale, same plan
    HogPlan(upscale=3.2, win_stride=8, padding=8, nlevels=28)
    >>> hog_plan(HogSettings(upscale=1.6), None, None, frame_scale=0.625).upscale
    2.56
    >>> hog_plan(s, 15.0, 30.0)  # capped at 4x: people stay smaller than the window
    HogPlan(upscale=4.0, win_stride=5, padding=5, nlevels=18)
    """
    lo, hi = UPSCALE_RANGE
    target = _WINDOW[settings.detector][1] * _PERSON_IN_WINDOW[settings.detector]
    if settings.upscale != "auto":
        up = float(settings.upscale) / frame_scale
    elif far_px is None:
        up = 1.0 / frame_scale  # no height model: what 1x was on the configured frames
    else:
        up = target / max(far_px, 1.0)
    up = round(float(np.clip(up, lo, hi)), 4)
    # Upscaled people below the window's person (upscale capped): a proportionally finer stride.
    shrink = min(1.0, far_px * up / target) if far_px is not None else 1.0
    stride = max(2, int(round(settings.win_stride * shrink)))
    nlevels = 64  # OpenCV's default
    if near_px is not None:
        largest = near_px * up * settings.max_height_ratio / target
        nlevels = int(np.ceil(np.log(max(largest, 1.0)) / np.log(settings.pyramid_scale))) + 1
    return HogPlan(up, stride, stride, int(np.clip(nlevels, 1, 64)))


def make_hog(detector: str, nlevels: int = 64) -> cv2.HOGDescriptor:
    """OpenCV's people detector with ``nlevels`` pyramid levels (the INRIA or Daimler SVM)."""
    win = _WINDOW[detector]
    # Gamma correction as before: on in cv2.HOGDescriptor(), off in the Daimler constructor.
    gamma = detector == "default"
    hog = cv2.HOGDescriptor(
        win, (16, 16), (8, 8), (8, 8), 9, 1, -1.0, cv2.HOGDescriptor_L2Hys, 0.2, gamma, nlevels
    )
    if detector == "daimler":
        hog.setSVMDetector(cv2.HOGDescriptor_getDaimlerPeopleDetector())
    else:
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def zone_person_heights(layout: ZoneLayout) -> tuple[float | None, float | None]:
    """Expected person height (px, delivered frame) at the far quarter and the nearest of the
    zones' foot rows where someone can stand (below the horizon); (None, None) without a
    height model."""
    if layout.heights is None:
        return None, None
    feet = np.zeros(layout.shape, bool)
    for mask in layout.feet.values():
        feet |= mask
    rows = feet.any(axis=1) & layout.standing
    heights = layout.heights[np.flatnonzero(rows if rows.any() else feet.any(axis=1))]
    return float(np.percentile(heights, 25)), float(heights.max())


@register("hog")
class HogCounter(DetectionCounter):
    def __init__(self, config: CameraConfig, calibration: Calibration | None = None) -> None:
        super().__init__(config, calibration)
        settings = config.hog
        if calibration is not None and calibration.hog:
            settings = HogSettings.model_validate({**settings.model_dump(), **calibration.hog})
        self.settings = settings
        self.nms_iou = settings.nms_iou
        self._plan_for: ZoneLayout | None = None

    def plan(self, layout: ZoneLayout) -> HogPlan:
        """The HOG settings for the frames ``layout`` describes (see ``hog_plan``)."""
        far, near = zone_person_heights(layout)
        return hog_plan(self.settings, far, near, frame_scale=layout.scale[1])

    def detect(
        self, frame: np.ndarray, layout: ZoneLayout, hit_threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        if hit_threshold is None:
            hit_threshold = s.hit_threshold
        if self._plan_for is not layout:
            self._plan_for, self._plan = layout, self.plan(layout)
            self.hog = make_hog(s.detector, self._plan.nlevels)
        up, stride, pad = self._plan.upscale, self._plan.win_stride, self._plan.padding
        x0, y0, x1, y1 = layout.roi
        crop = frame[y0:y1, x0:x1]
        if up != 1.0:
            crop = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        win_h = self.hog.winSize[1]
        if crop.shape[0] < win_h or crop.shape[1] < self.hog.winSize[0]:
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self.hog.detectMultiScale(
            crop,
            hitThreshold=hit_threshold,
            winStride=(stride, stride),
            padding=(pad, pad),
            scale=s.pyramid_scale,
            groupThreshold=0,  # overlapping windows are merged by our NMS, which keeps scores
        )
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = np.asarray(rects, np.float64) / up
        boxes[:, 0] += x0
        boxes[:, 1] += y0
        # Shrink the window to the person inside it, so the bottom edge is at the feet.
        frac = _PERSON_IN_WINDOW[s.detector]
        margin = boxes[:, 3] * (1 - frac) / 2
        boxes[:, 1] += margin
        boxes[:, 3] -= 2 * margin
        return boxes, np.asarray(weights, np.float64).reshape(-1)

    def sweep(self, frame: np.ndarray, thresholds: Sequence[float]) -> dict[float, dict[str, int]]:
        """People per zone at each SVM hit threshold, from one detection pass at the lowest.

        A window scoring above a threshold scores above every lower one, so the detections at
        a higher threshold are those of the lowest with a score at least that high.
        """
        layout = self._layout(frame)
        boxes, scores = self.detect(frame, layout, hit_threshold=min(thresholds))
        out = {}
        for thr in thresholds:
            keep = scores >= thr
            out[thr] = layout.count_feet(self.select(boxes[keep], scores[keep], layout))
        return out

    def size_ok(self, boxes: np.ndarray, layout: ZoneLayout) -> np.ndarray:
        expected = layout.expected_height(boxes[:, 1] + boxes[:, 3])
        if expected is None:
            return np.ones(len(boxes), bool)
        ratio = boxes[:, 3] / expected
        return (ratio >= self.settings.min_height_ratio) & (ratio <= self.settings.max_height_ratio)
