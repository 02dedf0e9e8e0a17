"""A camera edge process publishing to the real broker, and the worker turning it into zone state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.config.paths import bundled_site
from streams.offline.vision_truth import read_counts_csv

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
PETS = ROOT.parent / "shared" / "data" / "vision" / "pets09-s2l1"
SITE = bundled_site("pets09-demo.toml")
T0 = 1_764_000_000_000


@pytest.mark.skipif(not PETS.is_dir(), reason="shared PETS frames not present")
def test_camera_counts_reach_zone_state_and_an_outage_marks_the_camera_offline(pipeline, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 7):
        shutil.copy(PETS / "img1" / f"{i:06d}.jpg", frames)
    truth = read_counts_csv(PETS / "counts.csv")
    pipeline.env["CROWDSAFE_SITE"] = str(SITE)
    pipeline.start_worker()

    sent = pipeline.cli(
        "camera",
        "--source",
        str(frames),
        "--camera-id",
        "pets-cam1",
        "--site",
        str(SITE),
        "--start-ms",
        str(T0),
        "--no-flow",
    )
    assert sent.returncode == 0, sent.stderr
    states = pipeline.read(
        "zone-state", until=lambda s: any(x["ts"] >= T0 + 5 * 1000 // 7 for x in s)
    )
    plaza = [s for s in states if s["zone_id"] == "pets-plaza"]
    assert plaza and plaza[-1]["sources"]["fresh"] == ["pets-cam1"]
    # HOG on PETS is within about one person a frame (README: MAE 0.75 over 150 frames)
    assert abs(plaza[-1]["occupancy"] - truth[6]) <= 2.5
    assert plaza[-1]["density"] == pytest.approx(plaza[-1]["occupancy"] / 590.0, abs=1e-3)

    gone = pipeline.cli(
        "camera",
        "--source",
        str(tmp_path / "missing.mp4"),
        "--camera-id",
        "pets-cam1",
        "--site",
        str(SITE),
        "--start-ms",
        str(T0 + 60_000),
    )
    assert gone.returncode != 0  # a recording that will not open is an error for the operator
    states = pipeline.read("zone-state", until=lambda s: any(x["sources"]["offline"] for x in s))
    last = [s for s in states if s["zone_id"] == "pets-plaza"][-1]
    assert last["sources"]["offline"] == ["pets-cam1"]
    assert last["occupancy"] is None  # blind, not empty
