"""The camera process end to end: outages, CSV out, counts on PETS, calibration round trip."""

import csv
import io
import re
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from detectors.vision.config import CameraConfig
from detectors.vision.fitting import calibrate
from streams.cli import main
from streams.config.paths import bundled_site
from streams.edge.camera import CameraProcess, load_camera_config
from streams.edge.camera_files import read_calibration, write_calibration
from streams.edge.camera_summary import frames_to_count, with_progress
from streams.edge.capture import Frame, FrameSource
from streams.offline.vision_truth import read_counts_csv
from streams.ops.progress import Progress
from streams.schema.payloads import Reading

ROOT = Path(__file__).resolve().parents[2]
PETS = ROOT.parent / "shared" / "data" / "vision" / "pets09-s2l1"
SITE = bundled_site("pets09-demo.toml")
needs_pets = pytest.mark.skipif(not PETS.is_dir(), reason="shared PETS frames not present")
CFG = CameraConfig(polygons={"a": [(0, 0), (64, 0), (64, 64)], "b": [(0, 0), (64, 64), (0, 64)]})


class FakeCapture:
    """Gives ``frames`` frames, then fails; ``opens`` False means it never opens."""

    def __init__(self, frames=0, opens=True):
        self.frames, self.opens = frames, opens

    def isOpened(self):
        return self.opens

    def read(self):
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.zeros((64, 64, 3), np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def _run(captures, spec="rtsp://user:secret@cam/1", max_reconnects=1):
    caps = iter(captures)
    source = FrameSource(spec, open_capture=lambda _: next(caps), sleep=lambda s: None,
                         max_reconnects=max_reconnects, clock=lambda: 1_700_000_000.0)  # fmt: skip
    out = []
    process = CameraProcess("cam-1", CFG, out.append, flow=False, seq_start=0)
    process.run(source)
    assert process.readings_out == len(out)  # what the command reports as sent
    for r in out:
        msgspec.convert(r, Reading)
    return out


def test_a_source_that_does_not_open_reports_offline_never_zero():
    out = _run([FakeCapture(opens=False), FakeCapture(opens=False)])
    assert [r["zone_id"] for r in out] == ["a", "b", "a", "b"]
    assert all(r["status"] == "offline" and "count" not in r for r in out)
    assert "cannot open" in out[0]["reason"] and "secret" not in out[0]["reason"]


def test_a_dropped_stream_reconnects_and_reports_the_gap():
    out = _run([FakeCapture(frames=2), FakeCapture(frames=1), FakeCapture(opens=False)])
    kinds = [r.get("status", "ok") for r in out]
    assert kinds == ["ok"] * 4 + ["offline"] * 2 + ["ok"] * 2 + ["offline"] * 4
    assert out[4]["reason"] == "stream dropped" and "cannot open" in out[-1]["reason"]
    assert [r["seq"] for r in out] == list(range(1, 13))


def test_missing_file_exits_non_zero_with_offline_rows(tmp_path):
    out = tmp_path / "c.csv"
    rc = main(["camera", "--source", str(tmp_path / "none.mp4"), "--camera-id", "tud-cam",
               "--site", str(SITE), "--out", str(out), "--no-flow"])  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert rc == 1 and rows and all(r["status"] == "offline" and r["count"] == "" for r in rows)


def test_progress_counts_the_frames_a_recording_will_count(tmp_path):
    frames = tmp_path / "img"
    frames.mkdir()
    for i in range(5):
        (frames / f"{i:06d}.jpg").write_bytes(b"")
    assert frames_to_count(FrameSource(str(frames)), every=2) == 3  # frames 0, 2, 4
    assert frames_to_count(FrameSource("rtsp://cam/1"), every=1) == 0  # live: no total
    out = io.StringIO()
    progress = Progress("camera c", 3, out=out, every_s=0.0)
    items = [Frame(i, i, np.zeros((2, 2, 3), np.uint8)) for i in range(5)]
    assert list(with_progress(items, 2, progress)) == items
    progress.done()
    assert out.getvalue().splitlines()[-1] == "camera c: 3/3 (100 %)"


def test_unknown_camera_is_a_clear_error():
    with pytest.raises(ValueError, match="no source with id 'nope'"):
        load_camera_config(SITE, "nope")


@needs_pets
def test_csv_out_end_to_end_on_pets_frames(tmp_path, capsys):
    frames = tmp_path / "img1"
    frames.mkdir()
    for i in (50, 51, 52):
        shutil.copy(PETS / "img1" / f"{i:06d}.jpg", frames / f"{i:06d}.jpg")
    out = tmp_path / "counts.csv"
    rc = main(["camera", "--source", str(frames), "--camera-id", "pets-cam1", "--site", str(SITE),
               "--out", str(out), "--start-ms", "1700000000000"])  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert rc == 0 and [r["frame"] for r in rows] == ["1", "2", "3"]
    # The summary: frames, speed, and the people counted per zone as the CSV has them.
    (last,) = capsys.readouterr().err.splitlines()[-1:]
    counts = [int(r["count"]) for r in rows]
    zone = rows[0]["zone_id"]
    assert last.startswith(f"camera pets-cam1: 3 frames counted, 3 readings written to {out}; ")
    assert re.search(r"; \d+\.\d s, \d+\.\d frames/s; ", last), last
    assert last.endswith(f"; {zone} mean {sum(counts) / 3:.1f}, max {max(counts)} people"), last
    assert [int(r["ts"]) - 1_700_000_000_000 for r in rows] == [0, 143, 286]  # 7 fps
    truth = read_counts_csv(PETS / "counts.csv")
    assert all(abs(int(r["count"]) - truth[49 + int(r["frame"])]) <= 2 for r in rows)
    assert rows[0]["speed_mps"] == "" and 0.2 < float(rows[1]["speed_mps"]) < 3.0
    assert float(rows[1]["pressure"]) >= 0


@needs_pets
def test_hog_counts_on_pets_within_what_it_achieves():
    config = load_camera_config(SITE, "pets-cam1")
    process = CameraProcess("pets-cam1", config, lambda r: None, flow=False)
    truth = read_counts_csv(PETS / "counts.csv")
    errs = []
    for f in range(5, 151, 20):  # 8 frames spread over the clip
        frame = next(iter(FrameSource(str(PETS / "img1" / f"{f:06d}.jpg"))))
        errs.append(abs(process.counter.count(frame.image)["pets-plaza"] - truth[f]))
    assert np.mean(errs) <= 1.25  # 0.75 over all 150 frames (docs/vision.md)


@needs_pets
def test_density_calibration_generalises_within_pets_and_round_trips(tmp_path):
    config = load_camera_config(SITE, "pets-cam1-density")
    frames = [f.image for f in FrameSource(str(PETS / "img1"), fps=7)]
    truth = read_counts_csv(PETS / "counts.csv")
    counts = [truth[i + 1] for i in range(len(frames))]
    train = {"pets-plaza": [c if i < 75 else None for i, c in enumerate(counts)]}
    cal = calibrate("pets-cam1-density", config, frames, train, check_hog=False)
    path = tmp_path / "cal.json"
    write_calibration(cal, path)
    loaded = read_calibration(path)
    assert loaded == cal and loaded.density is not None
    # Held-out second half, counted by the camera process with the loaded calibration.
    from detectors.vision.density import predict
    from detectors.vision.fitting import density_features

    feats = density_features(config, frames)
    pred = [float(predict(loaded.density, f["pets-plaza"])[0]) for f in feats[75:]]
    assert np.mean(np.abs(np.round(pred) - np.array(counts[75:]))) <= 1.3
