"""The camera edge process: frames in, per-zone readings out; no image ever leaves.

``CameraProcess`` turns ``Frame``/``Outage`` items into reading dicts (``streams.schema.payloads.Reading``)
and hands them to a sink: the Kafka producer, or a CSV writer for ``--out``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig
from detectors.vision.counters import Counter, make_counter, with_method
from detectors.vision.flow import FlowMeter
from detectors.vision.pressure import crowd_pressure
from streams.config.site import load_site
from streams.edge.camera_files import read_model
from streams.edge.capture import Frame, Outage, counted

Sink = Callable[[dict[str, Any]], None]
CSV_FIELDS = [
    "frame", "ts", "zone_id", "count", "status", "reason",
    "speed_mps", "direction_deg", "velocity_var", "pressure",
]  # fmt: skip


def load_camera_config(site: Path, camera_id: str) -> CameraConfig:
    """The validated camera table of source ``camera_id`` in a site file (paths resolved)."""
    loaded = load_site(site)
    source = loaded.source_by_id.get(camera_id)
    if source is None:
        known = ", ".join(loaded.source_by_id) or "none"
        raise ValueError(f"{site}: no source with id {camera_id!r} (sources: {known})")
    if source.kind != "camera":
        raise ValueError(f"{site}: source {camera_id!r} is a {source.kind!r}, not a camera")
    if source.camera is None:
        raise ValueError(f"{site}: source {camera_id!r} has no [sources.camera] table")
    return source.camera


def build_counter(
    config: CameraConfig, calibration: Calibration | None, method: str | None = None
) -> Counter:
    """The camera's counter: ``method`` if given, else the site's, else the calibration's
    winner (``with_method``), with the calibration and any detector model it needs."""
    config = with_method(config, calibration, method)
    return make_counter(config, calibration, model=read_model(config))


class CameraProcess:
    """Counts and motion per zone for each processed frame; outages as offline readings."""

    def __init__(
        self,
        camera_id: str,
        config: CameraConfig,
        sink: Sink,
        *,
        counter: Counter | None = None,
        calibration: Calibration | None = None,
        flow: bool | None = None,
        seq_start: int | None = None,
        overlay: Path | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.config = config
        self.sink = sink
        self.counter = counter or build_counter(config, calibration)
        use_flow = config.flow.enabled if flow is None else flow
        self.flow = FlowMeter(config) if use_flow else None
        # Starting at the wall clock in µs keeps seq increasing across restarts of the process
        # (as long as it sends fewer than a million readings a second).
        self.seq = time.time_ns() // 1000 if seq_start is None else seq_start
        self.overlay_path = overlay
        self._overlay: cv2.VideoWriter | None = None
        self.frames_done = 0
        self.readings_out = 0  # handed to the sink: counted and offline readings alike
        self.areas: dict[str, float] | None = None

    def _emit(self, reading: dict[str, Any]) -> None:
        self.sink(reading)
        self.readings_out += 1

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def run(self, items: Iterable[Frame | Outage]) -> int:
        """Process a source to its end; returns the number of frames counted."""
        try:
            for item in items:
                if isinstance(item, Outage):
                    self.on_outage(item)
                elif counted(item.index, self.config.every):
                    self.on_frame(item)
        finally:
            if self._overlay is not None:
                self._overlay.release()
        return self.frames_done

    def on_outage(self, outage: Outage) -> list[dict[str, Any]]:
        # Never a zero: the zone may be full while the camera is blind.
        out = [
            {
                "source_id": self.camera_id,
                "kind": "camera",
                "zone_id": zone,
                "ts": outage.ts_ms,
                "seq": self._next_seq(),
                "status": "offline",
                "reason": outage.reason,
            }
            for zone in self.config.polygons
        ]
        if self.flow is not None:
            self.flow.prev = None  # no motion across a gap
        for r in out:
            self._emit(r)
        return out

    def on_frame(self, frame: Frame) -> list[dict[str, Any]]:
        counts = self.counter.count(frame.image)
        layout = self.counter.layout
        motion = self.flow.update(frame.image, frame.ts_ms, layout) if self.flow and layout else {}
        if self.areas is None and layout is not None and layout.homography is not None:
            self.areas = {z: layout.homography.area_m2(p) for z, p in layout.polygons.items()}
        ready = self.counter.ready
        out = []
        for zone, n in counts.items():
            r: dict[str, Any] = {
                "source_id": self.camera_id,
                "kind": "camera",
                "zone_id": zone,
                "ts": frame.ts_ms,
                "seq": self._next_seq(),
            }
            if ready:
                r["count"] = n
            else:
                r.update(status="degraded", reason="background model warming up")
            m = motion.get(zone)
            if m is not None and m.metric:
                r["speed_mps"] = round(m.stats.speed, 4)
                r["direction_deg"] = round(m.stats.direction_deg, 1)
                r["velocity_var"] = round(m.stats.variance, 6)
                area = (self.areas or {}).get(zone, 0.0)
                if ready and area > 0:
                    r["pressure"] = round(crowd_pressure(n / area, m.stats.variance), 6)
            out.append(r)
            self._emit(r)
        self.frames_done += 1
        if self.overlay_path is not None:
            self._draw(frame, counts)
        return out

    def _draw(self, frame: Frame, counts: dict[str, int]) -> None:
        """Local debug video only: polygons, detections and counts."""
        img = frame.image.copy()
        layout = self.counter.layout
        if layout is not None:
            for zone, poly in layout.polygons.items():
                pts = np.round(np.asarray(poly)).astype(np.int32)
                cv2.polylines(img, [pts], True, (0, 255, 255), 2)
                x, y = pts.min(axis=0)
                cv2.putText(img, f"{zone}: {counts.get(zone)}", (int(x) + 4, int(y) + 20),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)  # fmt: skip
        for x, y, w, h in np.round(self.counter.last_boxes).astype(int):
            cv2.rectangle(img, (x, y), (x + w, y + h), (0, 0, 255), 2)
        if self._overlay is None:
            assert self.overlay_path is not None
            self.overlay_path.parent.mkdir(parents=True, exist_ok=True)
            fps = self.config.fps or 7.0
            self._overlay = cv2.VideoWriter(str(self.overlay_path),
                                            cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                            (img.shape[1], img.shape[0]))  # fmt: skip
        self._overlay.write(img)


class CsvSink:
    """Writes readings as CSV rows (``frame`` = 1-based frame number, from ts and fps)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.DictWriter(self._fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        self._writer.writeheader()
        self.frame: int | None = None

    def __call__(self, reading: dict[str, Any]) -> None:
        self._writer.writerow({"frame": self.frame, "status": "ok", **reading})

    def close(self) -> None:
        self._fh.close()


def frame_numbering(items: Iterable[Frame | Outage], sink: CsvSink) -> Iterable[Frame | Outage]:
    """Tell the CSV sink which frame the next readings belong to."""
    for item in items:
        sink.frame = item.index + 1 if isinstance(item, Frame) else None
        yield item
