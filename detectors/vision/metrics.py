"""Error measures of a people counter against ground truth (pure numbers; no file I/O).

Ground truth files are read by :mod:`streams.offline.vision_truth`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.vision.geometry import points_in_polygon


def truth_counts(
    boxes: dict[int, np.ndarray], frames: Sequence[int], polygon: Sequence[Sequence[float]]
) -> np.ndarray:
    """People whose feet (bottom centre of the box) are in ``polygon``, per frame."""
    out = []
    for f in frames:
        b = boxes.get(f, np.zeros((0, 4)))
        feet = np.c_[b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3]]
        out.append(int(points_in_polygon(feet, polygon).sum()) if len(b) else 0)
    return np.asarray(out)


def mae(pred: Sequence[float], truth: Sequence[float]) -> float:
    """Mean absolute error per frame.

    >>> mae([1, 2, 4], [1, 3, 2])
    1.0
    """
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(truth, float))))
