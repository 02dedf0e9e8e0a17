"""Image geometry for counting: zone masks, the ground homography and the person-height model."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Point = Sequence[float]


def polygon_mask(shape: tuple[int, int], polygon: Sequence[Point]) -> np.ndarray:
    """Boolean mask (``shape`` = rows, cols) of the pixels inside ``polygon`` (image x, y).

    >>> m = polygon_mask((4, 6), [(1, 1), (4, 1), (4, 2), (1, 2)])
    >>> int(m.sum()), bool(m[1, 1]), bool(m[0, 0])
    (8, True, False)
    """
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon, np.float64)).astype(np.int32)], 1)
    return mask.astype(bool)


def points_in_polygon(points: np.ndarray, polygon: Sequence[Point]) -> np.ndarray:
    """Which of ``points`` (N x 2, image x, y) lie inside or on ``polygon``.

    >>> points_in_polygon(np.array([[1, 1], [5, 5]]), [(0, 0), (2, 0), (2, 2), (0, 2)]).tolist()
    [True, False]
    """
    contour = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return np.array(
        [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points],
        dtype=bool,
    )


class Homography:
    """Image-to-ground mapping (metres on a flat ground plane) from four or more point pairs.

    >>> h = Homography([(0, 0), (100, 0), (100, 100), (0, 100)], [(0, 0), (2, 0), (2, 2), (0, 2)])
    >>> h.to_ground(np.array([[50.0, 50.0]])).round(6).tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, image_points: Sequence[Point], ground_points: Sequence[Point]) -> None:
        src = np.asarray(image_points, np.float64)
        dst = np.asarray(ground_points, np.float64)
        if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 4:
            raise ValueError("a homography needs four or more (image x, y) -> (ground x, y) pairs")
        # Plain least squares (method 0): surveyed points are few and trusted, no RANSAC.
        matrix, _ = cv2.findHomography(src, dst, 0)
        if matrix is None or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-12:
            raise ValueError("ground points are degenerate (three or more on one line?)")
        self.matrix = matrix

    def scaled(self, sx: float, sy: float) -> Homography:
        """The same ground mapping for frames scaled by (sx, sy) from the surveyed ones.

        >>> h = Homography([(0, 0), (100, 0), (100, 100), (0, 100)], [(0, 0), (2, 0), (2, 2), (0, 2)])
        >>> h.scaled(2.0, 2.0).to_ground(np.array([[100.0, 100.0]])).round(6).tolist()
        [[1.0, 1.0]]
        """
        out = object.__new__(Homography)
        out.matrix = self.matrix @ np.diag([1.0 / sx, 1.0 / sy, 1.0])
        return out

    def to_ground(self, points: np.ndarray) -> np.ndarray:
        """Map N x 2 image points to N x 2 ground points in metres."""
        pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.matrix).reshape(-1, 2)

    def area_m2(self, polygon: Sequence[Point]) -> float:
        """Ground area in m² of an image polygon (its corners mapped to the ground)."""
        g = self.to_ground(np.asarray(polygon, np.float64))
        x, y = g[:, 0], g[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


class PersonHeight:
    """Expected standing-person height in pixels as a linear function of the foot row.

    Fitted by least squares on (row, height) pairs; the perspective of a flat ground seen by a
    level-ish camera makes height nearly linear in the row. Extrapolation is held within half the
    smallest and twice the largest height given, where a line fitted on a few rows stops meaning
    anything.

    >>> ph = PersonHeight([(100, 50), (300, 100)])
    >>> round(float(ph(200)), 6), round(float(ph.at_rows(2)[1]), 6), float(ph(10_000))
    (75.0, 25.25, 200.0)
    """

    def __init__(self, pairs: Sequence[Point]) -> None:
        arr = np.asarray(pairs, np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
            raise ValueError("person height needs two or more (row, height px) pairs")
        if len(arr) == 2 and arr[0, 0] == arr[1, 0]:
            raise ValueError("person height pairs must be on different rows")
        a = np.c_[arr[:, 0], np.ones(len(arr))]
        self.slope, self.intercept = np.linalg.lstsq(a, arr[:, 1], rcond=None)[0]
        self.floor_px = 0.5 * float(arr[:, 1].min())
        self.ceil_px = 2.0 * float(arr[:, 1].max())

    def standing_rows(self, rows: int, sy: float = 1.0) -> np.ndarray:
        """Which image rows 0..rows-1 (frames scaled by ``sy``) can hold a standing person's
        feet: those below the horizon, where the fitted line gives a person a pixel or more.

        >>> PersonHeight([(300, 100), (400, 200)]).standing_rows(400).nonzero()[0][[0, -1]].tolist()
        [201, 399]
        """
        line = self.slope * (np.arange(rows) / sy) + self.intercept
        return line >= 1

    def __call__(self, row: float | np.ndarray) -> float | np.ndarray:
        h = self.slope * np.asarray(row, np.float64) + self.intercept
        return np.clip(h, self.floor_px, self.ceil_px)

    def by_pixel_row(self, rows: int, sy: float = 1.0) -> np.ndarray:
        """Height of the person a pixel most likely belongs to, for every image row.

        A pixel at row y is typically mid-body of someone whose feet are half a height lower,
        so weight it by that person's height rather than by the height at y itself. ``sy``: the
        frames' scale from those the pairs were measured on.
        """
        feet = np.arange(-rows, 3 * rows, dtype=np.float64)
        h = np.asarray(self(feet / sy)) * sy
        centres = feet - h / 2
        order = np.argsort(centres, kind="stable")
        return np.interp(np.arange(rows), centres[order], h[order])

    def at_rows(self, rows: int, sy: float = 1.0) -> np.ndarray:
        """Height for every image row 0..rows-1 of frames scaled by ``sy``.

        >>> ph = PersonHeight([(100, 50), (300, 100)])
        >>> float(ph.at_rows(800, sy=2.0)[400]) == 2 * float(ph(200))
        True
        """
        return np.asarray(self(np.arange(rows) / sy), np.float64) * sy


def body_mask(foot_mask: np.ndarray, heights: np.ndarray | None) -> np.ndarray:
    """Pixels where a person standing with feet in ``foot_mask`` can appear.

    Zones are drawn on the ground (a person belongs to the zone holding their feet), but their
    pixels reach one person-height above it; ``heights`` gives that height for each row.
    """
    if heights is None:
        return foot_mask.copy()
    out = foot_mask.copy()
    for row in np.flatnonzero(foot_mask.any(axis=1)):
        top = max(0, int(row - heights[row]))
        out[top:row, foot_mask[row]] = True
    return out
