"""The edge reads and writes the camera's files; detectors/ only sees text and bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.vision.calibration import Calibration, LinearModel
from detectors.vision.config import CameraConfig
from streams.cli import main
from streams.config.paths import bundled_site
from streams.edge.camera import CameraProcess
from streams.edge.camera_files import load_calibration, read_model, write_calibration

TRIANGLE = {"a": [(0, 0), (1, 0), (1, 1)]}


def _calibration() -> Calibration:
    model = LinearModel(features=["fg"], coef=[2.0], intercept=1.0, mean=[0.5], scale=[0.25])
    return Calibration(
        camera_id="cam-1", method="density", created="2026-01-01T00:00:00Z", frames=3,
        density=model, hog={"hit_threshold": 0.2}, metrics={"mae_cv": 0.5},
    )  # fmt: skip


def test_calibration_round_trips_through_a_file_the_site_names(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "cam-1.json"
    write_calibration(_calibration(), path)
    assert path.read_text().endswith("}\n")
    config = CameraConfig(method="density", polygons=TRIANGLE, calibration=path)
    assert load_calibration(config) == _calibration()
    assert load_calibration(CameraConfig(polygons=TRIANGLE)) is None


def test_dnn_model_bytes_are_read_at_the_edge(tmp_path: Path) -> None:
    onnx_bytes = pytest.importorskip("tests.detectors.vision.test_vision_dnn").tiny_yolov8(
        [[16, 40, 8, 16, 0.9, 0.1], *([[0, 0, 1, 1, 0.0, 0.0]] * 8)]
    )
    path = tmp_path / "tiny.onnx"
    path.write_bytes(onnx_bytes)
    square = [(0, 0), (128, 0), (128, 128), (0, 128)]
    config = CameraConfig(
        method="dnn", model=path, polygons={"all": square},
        dnn={"input_size": (64, 64), "score_threshold": 0.4},
    )  # fmt: skip
    assert read_model(config) == onnx_bytes
    process = CameraProcess("cam-1", config, lambda _: None, flow=False)
    assert process.counter.count(np.zeros((128, 128, 3), np.uint8)) == {"all": 1}
    # Other methods never read a model, even when one is named.
    assert read_model(config.model_copy(update={"method": "hog"})) is None


def test_a_missing_model_file_is_a_one_line_camera_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.toml"
    text = bundled_site("pets09-demo.toml").read_text()
    site.write_text(text.replace('method = "hog"', 'method = "dnn"\nmodel = "models/none.onnx"', 1))
    code = main(
        ["camera", "--source", str(tmp_path), "--camera-id", "pets-cam1", "--site", str(site)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"camera: dnn model not found: {tmp_path / 'models' / 'none.onnx'}\n"


def test_a_camera_that_sees_nothing_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = bundled_site("pets09-demo.toml")
    out = tmp_path / "counts.csv"
    missing = tmp_path / "no-such-folder"
    args = ["camera", "--source", str(missing), "--camera-id", "pets-cam1", "--site", str(site)]
    assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("camera pets-cam1: 0 frames counted")
    assert err.endswith(f"(cannot open {missing})")
