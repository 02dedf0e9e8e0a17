"""``dnn``: a person detector the user supplies as ONNX, run with OpenCV's ``cv2.dnn``.

Understands the common single-output layouts: YOLOv8-style ``[1, 4+C, N]`` (cx, cy, w, h, class
scores), YOLOv5-style ``[1, N, 5+C]`` (cx, cy, w, h, objectness, class scores) and SSD
``DetectionOutput`` ``[1, 1, N, 7]`` (image, class, score, x0, y0, x1, y1 in 0..1). Nothing is
downloaded: no model file, no dnn camera. The model arrives as bytes; the edge reads the file
the site names (``streams/edge/camera_files.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig, DnnSettings
from detectors.vision.counters import DetectionCounter, ZoneLayout, register


def net_from_onnx(model: bytes) -> cv2.dnn.Net:
    """An OpenCV network from the bytes of an ONNX file."""
    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def guess_layout(out: np.ndarray) -> str:
    """Which layout an output tensor has, from its shape.

    >>> guess_layout(np.zeros((1, 1, 10, 7))), guess_layout(np.zeros((1, 84, 8400)))
    ('ssd', 'yolov8')
    >>> guess_layout(np.zeros((1, 25200, 85)))
    'yolov5'
    """
    if out.ndim == 4 and out.shape[-1] == 7:
        return "ssd"
    if out.ndim == 3:
        # Boxes outnumber channels in every YOLO head; the long axis is the box axis.
        return "yolov8" if out.shape[1] < out.shape[2] else "yolov5"
    raise ValueError(f"unknown detector output shape {out.shape}")


def decode(
    out: np.ndarray, settings: DnnSettings, layout: str, input_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes (x, y, w, h in network-input pixels) and scores from a raw output."""
    iw, ih = input_wh
    cls = settings.person_class
    if layout == "ssd":
        det = out.reshape(-1, 7)
        det = det[(det[:, 1].astype(int) == cls) & (det[:, 2] >= settings.score_threshold)]
        x0, y0, x1, y1 = det[:, 3] * iw, det[:, 4] * ih, det[:, 5] * iw, det[:, 6] * ih
        return np.c_[x0, y0, x1 - x0, y1 - y0], det[:, 2]
    if layout == "yolov8":
        rows = out.reshape(out.shape[1], -1).T
        scores = rows[:, 4 + cls]
    else:
        rows = out.reshape(-1, out.shape[-1])
        scores = rows[:, 4] * rows[:, 5 + cls]
    keep = scores >= settings.score_threshold
    rows, scores = rows[keep], scores[keep]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    return np.c_[cx - w / 2, cy - h / 2, w, h], scores


def letterbox(
    image: np.ndarray, size: tuple[int, int], enabled: bool
) -> tuple[np.ndarray, float, float, tuple[float, float]]:
    """Resize into ``size`` (w, h), keeping the aspect ratio when ``enabled`` (grey padding).

    Returns the image, the x and y scales and the (x, y) padding offset.
    """
    tw, th = size
    h, w = image.shape[:2]
    if not enabled:
        return cv2.resize(image, (tw, th)), tw / w, th / h, (0.0, 0.0)
    s = min(tw / w, th / h)
    nw, nh = round(w * s), round(h * s)
    canvas = np.full((th, tw, 3), 114, np.uint8)
    ox, oy = (tw - nw) // 2, (th - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = cv2.resize(image, (nw, nh))
    return canvas, s, s, (float(ox), float(oy))


@register("dnn")
class DnnCounter(DetectionCounter):
    def __init__(
        self,
        config: CameraConfig,
        calibration: Calibration | None = None,
        *,
        model: bytes | None = None,
    ) -> None:
        super().__init__(config, calibration)
        if model is None:
            raise ValueError("method 'dnn' needs the ONNX model's bytes (the file in `model`)")
        self.settings = config.dnn
        self.nms_iou = self.settings.nms_iou
        self.net = net_from_onnx(model)
        self.layout_name = self.settings.layout

    def detect(self, frame: np.ndarray, layout: ZoneLayout) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        img, sx, sy, (ox, oy) = letterbox(frame, s.input_size, s.letterbox)
        blob = cv2.dnn.blobFromImage(img, s.scale, s.input_size, swapRB=s.swap_rb, crop=False)
        self.net.setInput(blob)
        out = np.asarray(self.net.forward())
        # Exporters and cv2.dnn's broadcasting add leading 1-axes; YOLO heads are 3-D.
        while out.ndim > 3 and out.shape[0] == 1 and out.shape[-1] != 7:
            out = out[0]
        if self.layout_name == "auto":
            self.layout_name = guess_layout(out)
        boxes, scores = decode(out, s, self.layout_name, s.input_size)
        if len(boxes):
            boxes = boxes.copy()
            boxes[:, 0] = (boxes[:, 0] - ox) / sx
            boxes[:, 1] = (boxes[:, 1] - oy) / sy
            boxes[:, 2] /= sx
            boxes[:, 3] /= sy
        return boxes, scores
