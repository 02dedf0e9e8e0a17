"""``crowdsafe camera``: count people per zone from a camera and publish readings."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import get_args

import cv2

from detectors.vision.config import Method
from streams.edge.camera import (
    CameraProcess,
    CsvSink,
    build_counter,
    frame_numbering,
    load_camera_config,
)
from streams.edge.camera_files import load_calibration
from streams.edge.camera_summary import CountTally, frames_to_count, summary, with_progress
from streams.edge.capture import FrameSource
from streams.ops.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("camera", help="count people in a camera's zones; publish readings")
    p.add_argument("--source", required=True, help="video file, image folder, RTSP URL or device")
    p.add_argument("--camera-id", required=True, help="the camera's source id in the site file")
    p.add_argument("--site", required=True, type=Path, help="site TOML with [sources.camera]")
    p.add_argument("--every", type=int, help="count every N-th frame (overrides the site file)")
    p.add_argument("--out", type=Path, help="write counts to this CSV instead of Kafka")
    p.add_argument("--calibration", type=Path, help="calibration JSON (overrides the site file)")
    p.add_argument(
        "--method",
        choices=get_args(Method),
        help="counting method (default: the site's `method`, else the calibration's winner, "
        "else hog)",
    )
    p.add_argument("--no-flow", action="store_true", help="skip optical flow (speed, pressure)")
    p.add_argument("--fps", type=float, help="frame rate when the source does not say")
    p.add_argument("--start-ms", type=int, help="event time of the first frame of a recording")
    p.add_argument("--max-reconnects", type=int, help="give up after N failed reconnects")
    p.add_argument("--overlay", type=Path, help="write a local debug video (never sent)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cv2.setNumThreads(args.threads)
    try:
        config = load_camera_config(args.site, args.camera_id)
        if args.every:
            config = config.model_copy(update={"every": args.every})
        if args.fps:
            config = config.model_copy(update={"fps": args.fps})
        # Built here so that a missing model or calibration is a one-line error, not a trace.
        calibration = load_calibration(config, args.calibration)
        counter = build_counter(config, calibration, args.method)
    except (OSError, ValueError) as exc:
        print(f"camera: {exc}", file=sys.stderr)
        return 2
    chosen = calibration.chosen if calibration is not None else None
    if chosen is not None and counter.method != config.method:
        print(
            f"camera {args.camera_id}: counting with {chosen.method}, the calibration's choice "
            f"(cross-validated MAE {chosen.mae_cv:g}; {config.method} would be the default)",
            file=sys.stderr,
        )
    source = FrameSource(
        args.source, fps=config.fps, start_ms=args.start_ms, max_reconnects=args.max_reconnects
    )
    if args.out:
        sink = CsvSink(args.out)
        items = frame_numbering(source, sink)
        close = sink.close
    else:
        from streams.edge.producer import ReadingProducer  # Kafka only when publishing

        producer = ReadingProducer()
        sink, items, close = producer.send, source, producer.close
    outages: list[str] = []  # why the camera saw nothing, when it did not
    tally = CountTally()

    def publish(reading: dict) -> None:
        if reading.get("status", "ok") != "ok" and reading.get("reason"):
            outages.append(reading["reason"])
        tally.add(reading)
        sink(reading)

    # A recording shows progress over its frames (a bar on a terminal, a line every 10 s in a
    # log); a live camera runs until stopped, so it only says what it did when it stops.
    progress = Progress(f"camera {args.camera_id}", frames_to_count(source, config.every))
    items = with_progress(items, config.every, progress)

    process = CameraProcess(
        args.camera_id,
        config,
        publish,
        counter=counter,
        flow=False if args.no_flow else None,
        overlay=args.overlay,
    )
    started = time.monotonic()
    try:
        frames = process.run(items)
    except KeyboardInterrupt:
        frames = process.frames_done
    finally:
        close()
        progress.done()
    where = f"written to {args.out}" if args.out else "sent"
    why = f" ({outages[-1]})" if not frames and outages else ""
    readings = f"{process.readings_out} readings {where}{why}"
    print(summary(args.camera_id, frames, time.monotonic() - started, readings, tally),
          file=sys.stderr)  # fmt: skip
    return 0 if frames else 1
