"""One interface for every counting method, and the registry the site file chooses from.

A counter takes a BGR frame and returns people per zone. Detection counters (``hog``, ``dnn``)
find boxes and count the feet inside each zone polygon; ``density`` regresses a count from
pixel features.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig
from detectors.vision.geometry import body_mask, points_in_polygon, polygon_mask

REGISTRY: dict[str, type[Counter]] = {}
# Method name -> module that registers it; imported on first use so that e.g. a hog camera
# never needs what dnn needs.
_MODULES = {
    "hog": "detectors.vision.hog",
    "density": "detectors.vision.density",
    "dnn": "detectors.vision.dnn",
}


def register(name: str) -> Callable[[type[Counter]], type[Counter]]:
    def deco(cls: type[Counter]) -> type[Counter]:
        cls.method = name
        REGISTRY[name] = cls
        return cls

    return deco


def make_counter(
    config: CameraConfig, calibration: Calibration | None = None, *, model: bytes | None = None
) -> Counter:
    """The counter the camera's ``method`` names, with its calibration applied; ``model`` is
    the detector network (ONNX bytes) of the methods that need one (``dnn``)."""
    if config.method not in REGISTRY:
        importlib.import_module(_MODULES[config.method])
    cls = REGISTRY[config.method]
    return cls(config, calibration, model=model) if model is not None else cls(config, calibration)


def with_method(
    config: CameraConfig, calibration: Calibration | None, method: str | None = None
) -> CameraConfig:
    """The camera config with the method it counts with: ``method`` when given (``--method``),
    else the site file's ``method`` when written there, else the calibration's winner, else the
    default (``hog``).

    >>> from detectors.vision.calibration import MethodChoice
    >>> cfg = CameraConfig(polygons={"z": [(0, 0), (9, 0), (9, 9)]})
    >>> won = MethodChoice(method="density", mae_cv=0.7, folds=5, frames=150, compared={})
    >>> cal = Calibration(camera_id="c", method="hog", created="", frames=150, chosen=won)
    >>> with_method(cfg, cal).method, with_method(cfg, cal, "hog").method, with_method(cfg, None).method
    ('density', 'hog', 'hog')
    """
    if method is None and "method" not in config.model_fields_set:
        if calibration is not None and calibration.chosen is not None:
            method = calibration.chosen.method
    if method is None or method == config.method:
        return config
    if method == "dnn" and config.model is None:
        raise ValueError("method 'dnn' needs model = 'path/to/detector.onnx'")
    return config.model_copy(update={"method": method})


class ZoneLayout:
    """Zone polygons at the size of the frames actually received.

    Polygons drawn on ``frame_size`` are rescaled when the stream's size differs (cameras get
    reconfigured; counts should survive that).
    """

    def __init__(self, config: CameraConfig, shape: tuple[int, int]) -> None:
        rows, cols = shape
        sx = sy = 1.0
        if config.frame_size is not None:
            sx, sy = cols / config.frame_size[0], rows / config.frame_size[1]
        self.shape = shape
        self.scale = (sx, sy)
        self.polygons = {
            z: [(x * sx, y * sy) for x, y in pts] for z, pts in config.polygons.items()
        }
        # Heights and the ground mapping were measured on frame_size: scale them along.
        hm = config.height_model()
        self.heights = hm.at_rows(rows, sy) if hm is not None else None
        self.pixel_heights = hm.by_pixel_row(rows, sy) if hm is not None else None
        self.standing = hm.standing_rows(rows, sy) if hm is not None else np.ones(rows, bool)
        h = config.homography()
        self.homography = h.scaled(sx, sy) if h is not None else None
        self.feet = {z: polygon_mask(shape, p) for z, p in self.polygons.items()}
        empty = sorted(z for z, m in self.feet.items() if not m.any())
        if empty:
            raise ValueError(
                f"zone polygon(s) {', '.join(empty)} lie outside the {cols}x{rows} frame "
                "(set frame_size to the size they were drawn on)"
            )
        self.bodies = {z: body_mask(m, self.heights) for z, m in self.feet.items()}
        union = np.zeros(shape, bool)
        for m in self.bodies.values():
            union |= m
        ys, xs = np.nonzero(union)
        # Bounding box of every zone's body pixels: detectors need look nowhere else.
        self.roi = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    def expected_height(self, foot_rows: np.ndarray) -> np.ndarray | None:
        if self.heights is None:
            return None
        rows = np.clip(np.round(foot_rows).astype(int), 0, self.shape[0] - 1)
        return self.heights[rows]

    def count_feet(self, boxes: np.ndarray) -> dict[str, int]:
        """People per zone from N x 4 boxes (x, y, w, h): the bottom centre is the feet."""
        if len(boxes) == 0:
            return dict.fromkeys(self.polygons, 0)
        feet = np.c_[boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3]]
        return {z: int(points_in_polygon(feet, p).sum()) for z, p in self.polygons.items()}


class Counter(ABC):
    """People per zone from one BGR frame. Stateful: frames must come in time order."""

    method: ClassVar[str]

    def __init__(self, config: CameraConfig, calibration: Calibration | None = None) -> None:
        self.config = config
        self.calibration = calibration
        self.layout: ZoneLayout | None = None
        # Detections of the last frame, for the local debug overlay only.
        self.last_boxes: np.ndarray = np.zeros((0, 4))

    def _layout(self, frame: np.ndarray) -> ZoneLayout:
        if self.layout is None or self.layout.shape != frame.shape[:2]:
            self.layout = ZoneLayout(self.config, frame.shape[:2])
        return self.layout

    @abstractmethod
    def estimate(self, frame: np.ndarray) -> dict[str, float]:
        """Expected people per zone, possibly fractional."""

    def count(self, frame: np.ndarray) -> dict[str, int]:
        """Whole people per zone, never negative."""
        return {z: max(0, int(round(v))) for z, v in self.estimate(frame).items()}

    @property
    def ready(self) -> bool:
        """False while the counter is still learning (e.g. the background model warming up)."""
        return True


class DetectionCounter(Counter):
    """Counts boxes from ``detect`` after the size filter and non-maximum suppression."""

    nms_iou: float = 0.3

    @abstractmethod
    def detect(self, frame: np.ndarray, layout: ZoneLayout) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N x 4: x, y, w, h in frame pixels) and their scores."""

    def size_ok(self, boxes: np.ndarray, layout: ZoneLayout) -> np.ndarray:
        return np.ones(len(boxes), bool)

    def select(self, boxes: np.ndarray, scores: np.ndarray, layout: ZoneLayout) -> np.ndarray:
        """The boxes that count: of a plausible size, one per person (NMS)."""
        if len(boxes):
            keep = self.size_ok(boxes, layout)
            boxes, scores = boxes[keep], scores[keep]
        if len(boxes):
            boxes = boxes[nms(boxes, scores, self.nms_iou)]
        return boxes

    def estimate(self, frame: np.ndarray) -> dict[str, float]:
        layout = self._layout(frame)
        boxes = self.select(*self.detect(frame, layout), layout)
        self.last_boxes = boxes
        return {z: float(n) for z, n in layout.count_feet(boxes).items()}


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices (ascending) of boxes kept by greedy non-maximum suppression.

    Written out rather than ``cv2.dnn.NMSBoxes``, which rejects the negative SVM margins that
    HOG gives as scores.

    >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]]), np.array([.9, .8, -.7]), .3)
    array([0, 2])
    """
    boxes = np.asarray(boxes, np.float64)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.sort(np.asarray(keep, int))
