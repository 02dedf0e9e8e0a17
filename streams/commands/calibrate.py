"""``crowdsafe calibrate``: fit a camera's counters on labelled frames and pick its method.

Fits the density regression and the HOG hit threshold, compares hog, density (and dnn when the
camera names a model file) by cross-validated error over contiguous blocks of frames, and writes
all of it, the winner included, to the calibration file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from detectors.vision.fitting import calibrate
from streams.edge.camera import load_camera_config
from streams.edge.camera_files import read_model, write_calibration
from streams.edge.capture import Frame, FrameSource
from streams.offline.vision_truth import read_counts_csv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a camera's counter on labelled frames")
    p.add_argument("--frames", required=True, help="image folder or video of the camera")
    p.add_argument(
        "--truth", required=True, type=Path, help="CSV: frame (1-based), count[, zone_id]"
    )
    p.add_argument("--camera-id", required=True, help="the camera's source id in the site file")
    p.add_argument("--site", required=True, type=Path, help="site file with the camera's table")
    p.add_argument("--out", type=Path, help="calibration JSON (default: the site's path)")
    p.add_argument("--no-hog", action="store_true", help="leave hog out (threshold, comparison)")
    p.add_argument("--ridge", type=float, default=1.0, help="ridge penalty of the regression")
    p.add_argument(
        "--folds", type=int, default=5, help="contiguous blocks of frames to hold out (default 5)"
    )
    p.add_argument(
        "--max-frames",
        type=int,
        default=150,
        help="labelled frames the methods are compared on, evenly spread (default 150)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cv2.setNumThreads(1)
    try:
        config = load_camera_config(args.site, args.camera_id)
    except (OSError, ValueError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    out = args.out or config.calibration or Path("calibration") / f"{args.camera_id}.json"
    # Keep each frame's position: labels are per frame number, and an unreadable image
    # must not shift every later label onto the wrong frame.
    items = [
        f for f in FrameSource(args.frames, fps=config.fps, start_ms=0) if isinstance(f, Frame)
    ]
    frames = [f.image for f in items]
    if not frames:
        print(f"calibrate: no frames in {args.frames}", file=sys.stderr)
        return 1
    zones = list(config.polygons)
    truth = {}
    for zone in zones:
        counts = read_counts_csv(args.truth, zone if len(zones) > 1 else None)
        truth[zone] = [counts.get(f.index + 1) for f in items]
    model, no_model = None, None
    try:
        model = read_model(config, any_method=True)
    except OSError as exc:
        no_model = str(exc)
    try:
        cal = calibrate(
            args.camera_id, config, frames, truth, check_hog=not args.no_hog, ridge=args.ridge,
            folds=args.folds, max_frames=args.max_frames, model=model, no_model=no_model,
        )  # fmt: skip
    except ValueError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 1
    write_calibration(cal, Path(out))
    chosen = cal.chosen.model_dump() if cal.chosen else None
    print(json.dumps({"out": str(out), "chosen": chosen, "hog": cal.hog, **cal.metrics}, indent=2))
    return 0
