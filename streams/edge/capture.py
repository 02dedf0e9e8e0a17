"""Frames from a video file, an image folder, an RTSP/HTTP stream or a local device.

Live sources reconnect after a drop and say so: the iterator yields an ``Outage`` for every
failed attempt, so the camera process can publish "offline" instead of going quiet (or, worse,
reporting nobody there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source since the process started (0-based)
    ts_ms: int  # event time: when the frame was taken, epoch ms
    image: np.ndarray


def counted(index: int, every: int) -> bool:
    """Whether the camera counts frame ``index`` when it counts every ``every``-th frame: the
    first, then each ``every``-th after it (the others are read and dropped).

    >>> [i for i in range(7) if counted(i, 3)]
    [0, 3, 6]
    """
    return index % every == 0


@dataclass(frozen=True)
class Outage:
    ts_ms: int
    reason: str


def source_kind(spec: str) -> str:
    """``dir``, ``file`` or ``live`` (streams and device numbers).

    >>> [source_kind(s) for s in ("rtsp://cam/1", "0", "/no/such.mp4")]
    ['live', 'live', 'file']
    """
    if spec.isdigit() or "://" in spec or spec.startswith("/dev/video"):
        return "live"
    return "dir" if Path(spec).is_dir() else "file"


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class FrameSource:
    """Iterate frames (and outages) of one source.

    Recorded sources (files, folders) have event times ``start_ms`` + their own clock and end at
    their last frame; live sources are stamped with the wall clock when a frame arrives.
    """

    def __init__(
        self,
        spec: str,
        *,
        fps: float | None = None,
        start_ms: int | None = None,
        max_reconnects: int | None = None,
        reconnect_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        open_capture: Callable[[Any], Any] = cv2.VideoCapture,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self.kind = source_kind(spec)
        self.fps = fps
        self.clock = clock
        self.start_ms = int(clock() * 1000) if start_ms is None else start_ms
        # Recorded sources do not come back by waiting: one attempt unless told otherwise.
        self.max_reconnects = (
            max_reconnects if max_reconnects is not None else (None if self.kind == "live" else 0)
        )
        self.reconnect_delay_s = reconnect_delay_s
        self.max_delay_s = max_delay_s
        self.open_capture = open_capture
        self.sleep = sleep

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def total_frames(self) -> int | None:
        """Frames a recording holds (None: a live source, or a file that does not say)."""
        if self.kind == "dir":
            return len(image_files(Path(self.spec)))
        if self.kind == "live":
            return None
        cap = self.open_capture(self.spec)
        if cap is None:
            return None
        try:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
        finally:
            cap.release()
        return n if n > 0 else None

    def __iter__(self) -> Iterator[Frame | Outage]:
        if self.kind == "dir":
            yield from self._folder()
        else:
            yield from self._capture()

    def _folder(self) -> Iterator[Frame | Outage]:
        files = image_files(Path(self.spec))
        if not files:
            yield Outage(self._now_ms(), f"no images in {self.spec}")
            return
        fps = self.fps or 25.0
        for i, path in enumerate(files):
            image = cv2.imread(str(path))
            if image is None:
                yield Outage(self._now_ms(), f"unreadable image {path.name}")
                continue
            yield Frame(i, self.start_ms + round(i * 1000 / fps), image)

    def _capture(self) -> Iterator[Frame | Outage]:
        target: Any = int(self.spec) if self.spec.isdigit() else self.spec
        index = 0
        failures = 0
        delay = self.reconnect_delay_s
        while True:
            cap = self.open_capture(target)
            if cap is None or not cap.isOpened():
                reason = f"cannot open {self._redacted()}"
            else:
                # The stream's own rate wins; the configured one is for sources that don't say.
                said = cap.get(cv2.CAP_PROP_FPS) or 0.0
                fps = said if 0 < said < 1000 else (self.fps or 25.0)
                got_any = False
                while True:
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    got_any = True
                    failures, delay = 0, self.reconnect_delay_s
                    if self.kind == "live":
                        ts = self._now_ms()
                    else:
                        ts = self.start_ms + round(index * 1000 / fps)
                    yield Frame(index, ts, image)
                    index += 1
                cap.release()
                if self.kind != "live" and got_any:
                    return  # end of a recording
                reason = "stream dropped" if got_any else f"no frames from {self._redacted()}"
            yield Outage(self._now_ms(), reason)
            if self.max_reconnects is not None and failures >= self.max_reconnects:
                return
            failures += 1
            self.sleep(delay)
            delay = min(delay * 2, self.max_delay_s)

    def _redacted(self) -> str:
        """The source without credentials (rtsp://user:pass@host/... -> rtsp://***@host/...)."""
        if "://" in self.spec and "@" in self.spec:
            scheme, rest = self.spec.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return self.spec
