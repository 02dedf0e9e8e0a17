"""Ground truth for the camera counters from files: MOTChallenge box files and count CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read_mot_boxes(path: Path) -> dict[int, np.ndarray]:
    """Boxes (x, y, w, h) per frame from a MOT ``gt.txt`` (frame, id, left, top, w, h, conf...).

    Rows with conf 0 are "ignore" regions in MOT16+ and are dropped.
    """
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    if rows.shape[1] > 6:
        rows = rows[rows[:, 6] != 0]
    return {int(f): rows[rows[:, 0] == f, 2:6] for f in np.unique(rows[:, 0])}


def read_counts_csv(path: Path, zone: str | None = None) -> dict[int, float]:
    """Counts per frame from a CSV with a ``frame`` column and a ``count`` column.

    Accepts this project's ``--out`` files (frame, zone_id, count, ...) and the shared data's
    ``counts.csv`` (frame, ..., count_gt_boxes): the first column whose name starts with
    ``count`` is used. ``zone`` keeps only that zone's rows when there is a zone column.
    """
    out: dict[int, float] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:  # tolerate a BOM
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        col = next((c for c in fields if c.startswith("count")), None)
        if "frame" not in fields or col is None:
            raise ValueError(f"{path}: needs a 'frame' column and a 'count...' column")
        for row in reader:
            if zone is not None and "zone_id" in row and row["zone_id"] != zone:
                continue
            if row[col] in ("", None):
                continue
            out[int(row["frame"])] = float(row[col])
    return out
