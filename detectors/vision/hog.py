"""``hog``: OpenCV's HOG + linear SVM people detector, for sparse scenes.

Dalal & Triggs 2005, "Histograms of Oriented Gradients for Human Detection" (CVPR); windows from
OpenCV's ``HOGDescriptor_getDefaultPeopleDetector`` (INRIA) or ``getDaimlerPeopleDetector``.
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig, HogSettings
from detectors.vision.counters import DetectionCounter, ZoneLayout, register

# A detection window is taller than the person it holds: the INRIA windows (64x128) were cut
# with about 16 px of margin above the head and below the feet (Dalal & Triggs 2005, sec. 3).
_PERSON_IN_WINDOW = {"default": 96 / 128, "daimler": 72 / 96}


def make_hog(detector: str) -> cv2.HOGDescriptor:
    if detector == "daimler":
        hog = cv2.HOGDescriptor((48, 96), (16, 16), (8, 8), (8, 8), 9)
        hog.setSVMDetector(cv2.HOGDescriptor_getDaimlerPeopleDetector())
    else:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


@register("hog")
class HogCounter(DetectionCounter):
    def __init__(self, config: CameraConfig, calibration: Calibration | None = None) -> None:
        super().__init__(config, calibration)
        settings = config.hog
        if calibration is not None and calibration.hog:
            settings = HogSettings.model_validate({**settings.model_dump(), **calibration.hog})
        self.settings = settings
        self.nms_iou = settings.nms_iou
        self.hog = make_hog(settings.detector)

    def upscale(self, layout: ZoneLayout) -> float:
        """The configured upscale, or for "auto" what brings people in the far quarter of the
        zones' foot rows up to the size the people windows are trained on (at most 2x)."""
        if self.settings.upscale != "auto":
            return float(self.settings.upscale)
        if layout.heights is None:
            return 1.0
        feet = np.zeros(layout.shape, bool)
        for mask in layout.feet.values():
            feet |= mask
        rows = np.flatnonzero(feet.any(axis=1))
        far = float(np.percentile(layout.heights[rows], 25))
        target = self.hog.winSize[1] * _PERSON_IN_WINDOW[self.settings.detector]
        return float(np.clip(target / max(far, 1.0), 1.0, 2.0))

    def detect(self, frame: np.ndarray, layout: ZoneLayout) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        if getattr(self, "_upscale_for", None) is not layout:
            self._upscale_for, self._upscale = layout, self.upscale(layout)
        up = self._upscale
        x0, y0, x1, y1 = layout.roi
        crop = frame[y0:y1, x0:x1]
        if up != 1.0:
            crop = cv2.resize(crop, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        win_h = self.hog.winSize[1]
        if crop.shape[0] < win_h or crop.shape[1] < self.hog.winSize[0]:
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self.hog.detectMultiScale(
            crop,
            hitThreshold=s.hit_threshold,
            winStride=(s.win_stride, s.win_stride),
            padding=(8, 8),
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

    def size_ok(self, boxes: np.ndarray, layout: ZoneLayout) -> np.ndarray:
        expected = layout.expected_height(boxes[:, 1] + boxes[:, 3])
        if expected is None:
            return np.ones(len(boxes), bool)
        ratio = boxes[:, 3] / expected
        return (ratio >= self.settings.min_height_ratio) & (ratio <= self.settings.max_height_ratio)
