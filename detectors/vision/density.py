"""``density``: count by regression on foreground and texture features, for dense crowds.

Counting by regression on low-level features rather than by detecting each person: Chan, Liang &
Vasconcelos 2008, "Privacy preserving crowd monitoring: counting people without people models or
tracking" (CVPR) -- segment the crowd by motion, take area/edge/texture features, weight each
pixel for perspective, and regress to a count. Background model: Zivkovic 2004 (OpenCV MOG2).
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.vision.calibration import Calibration, LinearModel
from detectors.vision.config import CameraConfig
from detectors.vision.counters import Counter, ZoneLayout, register

FEATURES = ("fg_area", "fg_edges", "new_edges")
# A standing person covers about 0.35 x height by height pixels (shoulder width to height
# ratio of adult bodies, ~0.25 m / 1.7 m, widened for arms and stride); the weights divide by
# that so features come out in "person equivalents", comparable across cameras.
_BODY_ASPECT = 0.35
# Uncalibrated fallback: one person per person-equivalent of foreground.
IDENTITY_MODEL = LinearModel(  # the raw first feature; for timing and tests, not counting
    features=list(FEATURES), coef=[1.0, 0.0, 0.0], intercept=0.0, mean=[0.0] * 3, scale=[1.0] * 3
)


class FeatureExtractor:
    """Perspective-weighted foreground and texture features of each zone, frame by frame."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        s = config.density
        self.bg = cv2.createBackgroundSubtractorMOG2(
            history=s.history, varThreshold=s.var_threshold, detectShadows=True
        )
        self.frames_seen = 0
        self.primed = False
        self.layout: ZoneLayout | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def _setup(self, layout: ZoneLayout) -> None:
        self.layout = layout
        rows, cols = layout.shape
        if layout.pixel_heights is not None:
            h = layout.pixel_heights[:, None]
        else:
            # Without a height model assume a person ~1/4 of the frame tall everywhere.
            h = np.full((rows, 1), rows / 4)
        self.w_area = np.broadcast_to(1 / (_BODY_ASPECT * h * h), (rows, cols)).astype(np.float32)
        # Edge length of a person grows with height, not area.
        self.w_edge = np.broadcast_to(1 / (4 * h), (rows, cols)).astype(np.float32)
        self.masks = {z: m.astype(np.float32) for z, m in layout.bodies.items()}

    def prime(self, frames: list[np.ndarray]) -> None:
        """Start the background model from the per-pixel median of ``frames``.

        A camera that has run for a while has learnt its empty scene; a short clip has not. The
        median of frames spread over a clip is the scene without the people who move through it.
        """
        if not frames:
            return
        median = np.median(np.stack(frames), axis=0).astype(np.uint8)
        self.bg.apply(median, learningRate=1.0)
        for _ in range(5):
            self.bg.apply(median)
        self.primed = True

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        shape = frame.shape[:2]
        if self.layout is None or self.layout.shape != shape:
            self._setup(ZoneLayout(self.config, shape))
        raw = self.bg.apply(frame)
        self.frames_seen += 1
        # 127 marks shadows: moving shade is not people.
        fg = cv2.morphologyEx((raw > 200).astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        edges = cv2.Canny(gray, 60, 150) > 0
        background = self.bg.getBackgroundImage()
        if background is not None:
            bgray = (
                cv2.cvtColor(background, cv2.COLOR_BGR2GRAY) if background.ndim == 3 else background
            )
            bg_edges = cv2.dilate(cv2.Canny(bgray, 60, 150), self._kernel) > 0
        else:
            bg_edges = np.zeros(shape, bool)
        # Texture of people who stand still and have melted into the background model still
        # differs from the empty scene's edges; that is what keeps dense, slow crowds counted.
        new_edges = edges & ~bg_edges
        fa = fg.astype(np.float32) * self.w_area
        fe = (edges & (fg > 0)).astype(np.float32) * self.w_edge
        ne = new_edges.astype(np.float32) * self.w_edge
        return {
            z: np.array([(fa * m).sum(), (fe * m).sum(), (ne * m).sum()], np.float64)
            for z, m in self.masks.items()
        }


def fit_linear(x: np.ndarray, y: np.ndarray, ridge: float = 1.0) -> LinearModel:
    """Ridge regression of counts ``y`` on features ``x`` (standardised; intercept free).

    >>> x = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]]); y = 2 * x[:, 0] + 1
    >>> m = fit_linear(x, y, ridge=0.0); round(float(predict(m, np.array([[4.0, 0, 0]]))[0]), 6)
    9.0
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    a = z.T @ z + ridge * np.eye(z.shape[1])
    coef = np.linalg.lstsq(a, z.T @ (y - y.mean()), rcond=None)[0]  # constant columns get 0
    return LinearModel(
        features=list(FEATURES),
        coef=coef.tolist(),
        intercept=float(y.mean()),
        mean=mean.tolist(),
        scale=scale.tolist(),
        ridge=ridge,
    )


def predict(model: LinearModel, x: np.ndarray) -> np.ndarray:
    z = (np.atleast_2d(x) - np.asarray(model.mean)) / np.asarray(model.scale)
    return np.clip(z @ np.asarray(model.coef) + model.intercept, 0, None)


@register("density")
class DensityCounter(Counter):
    def __init__(self, config: CameraConfig, calibration: Calibration | None = None) -> None:
        super().__init__(config, calibration)
        if calibration is None or calibration.density is None:
            # Features are not counts: without a fitted regression the numbers mean nothing.
            raise ValueError(
                "the density method needs a calibration file with a fitted regression: "
                "run `crowdsafe calibrate` and set `calibration` in [sources.camera]"
            )
        self.features = FeatureExtractor(config)
        self.model = calibration.density
        self.fitted_size = calibration.frame_size

    @property
    def ready(self) -> bool:
        return self.features.frames_seen > self.config.density.warmup

    def estimate(self, frame: np.ndarray) -> dict[str, float]:
        self._layout(frame)  # zones at the delivered size, for flow and the overlay
        feats = self.features(resize_to(frame, self.fitted_size))
        return {z: float(predict(self.model, f)[0]) for z, f in feats.items()}


def resize_to(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``frame`` at ``size`` (w, h), area-averaged when shrinking; as it is when ``size`` is None.

    The texture features are not scale-free (Canny finds fewer edges in a smaller image: on PETS
    at 480x360 the edge features are 20-45% lower than at 768x576), so a regression fitted on
    frames of one size is applied to frames brought to that size (Chan et al. 2008 fit per view).

    >>> resize_to(np.zeros((360, 480, 3), np.uint8), (768, 576)).shape
    (576, 768, 3)
    """
    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    shrink = frame.shape[1] > size[0]
    return cv2.resize(
        frame, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
