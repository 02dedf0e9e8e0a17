"""Crowd motion per zone from dense optical flow (Farnebäck 2003, OpenCV ``calcOpticalFlowFarneback``).

With the site's ground points, image motion becomes ground velocity in m/s, and with the zone's
ground area and count, Helbing's crowd pressure.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors.vision.config import CameraConfig
from detectors.vision.counters import ZoneLayout
from detectors.vision.pressure import VelocityStats, velocity_stats

# Frames further apart than this are not one motion step (a drop, a stall): start again.
MAX_GAP_S = 5.0
# Sample every n-th flow pixel: neighbouring flow vectors are strongly correlated anyway.
GRID_STEP = 2


@dataclass(frozen=True)
class ZoneMotion:
    stats: VelocityStats
    metric: bool  # True: m/s on the ground; False: px/s in the image


class FlowMeter:
    """Keeps the previous frame; each ``update`` gives motion per zone since then."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.settings = config.flow
        self.homography = config.homography()  # replaced by the layout's, scaled to the frames
        self.prev: np.ndarray | None = None
        self.prev_ts: int | None = None
        self.layout: ZoneLayout | None = None
        self._samples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _setup(self, layout: ZoneLayout) -> None:
        self.layout = layout
        self.homography = layout.homography
        ds = self.settings.downscale
        rows, cols = layout.shape
        small = (max(1, round(rows * ds)), max(1, round(cols * ds)))
        self._samples = {}
        for zone, body in layout.bodies.items():
            m = cv2.resize(body.astype(np.uint8), small[::-1], interpolation=cv2.INTER_NEAREST)
            grid = np.zeros_like(m, bool)
            grid[::GRID_STEP, ::GRID_STEP] = True
            ys, xs = np.nonzero((m > 0) & grid)
            # Full-size position of each sample, moved down to the feet of the person it is
            # probably on: the homography maps the ground, and bodies stand above it.
            px, py = xs / ds, ys / ds
            if layout.pixel_heights is not None:
                py = py + layout.pixel_heights[np.clip(py.astype(int), 0, rows - 1)] / 2
            self._samples[zone] = (ys, xs, np.c_[px, py])

    def update(self, frame: np.ndarray, ts_ms: int, layout: ZoneLayout) -> dict[str, ZoneMotion]:
        if self.layout is None or self.layout.shape != layout.shape:
            self._setup(layout)
            self.prev = None
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        ds = self.settings.downscale
        if ds != 1.0:
            gray = cv2.resize(gray, None, fx=ds, fy=ds, interpolation=cv2.INTER_AREA)
        prev, prev_ts = self.prev, self.prev_ts
        self.prev, self.prev_ts = gray, ts_ms
        if prev is None or prev_ts is None:
            return {}
        dt = (ts_ms - prev_ts) / 1000
        if not 0 < dt <= MAX_GAP_S:
            return {}
        flow = cv2.calcOpticalFlowFarneback(prev, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return self.zone_motion(flow, dt)

    def zone_motion(self, flow: np.ndarray, dt: float) -> dict[str, ZoneMotion]:
        """Motion per zone from a flow field (H x W x 2, px per frame at the flow's scale)."""
        ds = self.settings.downscale
        out = {}
        for zone, (ys, xs, base) in self._samples.items():
            f = flow[ys, xs] / ds  # full-size pixels per frame
            moving = np.hypot(f[:, 0], f[:, 1]) > self.settings.min_motion_px
            if not moving.any():
                out[zone] = ZoneMotion(
                    VelocityStats(0.0, 0.0, 0.0, 0.0, 0.0, 0), self.homography is not None
                )
                continue
            p0, f = base[moving], f[moving]
            if self.homography is not None:
                g0 = self.homography.to_ground(p0)
                g1 = self.homography.to_ground(p0 + f)
                v = (g1 - g0) / dt
            else:
                v = f / dt
            stats = velocity_stats(v[:, 0], v[:, 1])
            if stats is not None:
                out[zone] = ZoneMotion(stats, self.homography is not None)
        return out
