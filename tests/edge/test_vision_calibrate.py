"""``crowdsafe calibrate`` picks the counting method by cross-validated error; the camera uses it."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.vision.calibration import Calibration, MethodChoice
from detectors.vision.config import CameraConfig
from detectors.vision.counters import make_counter
from detectors.vision.density import IDENTITY_MODEL
from detectors.vision.fitting import compare_methods, contiguous_blocks
from detectors.vision.metrics import truth_counts
from streams.cli import main
from streams.config.paths import bundled_site
from streams.edge.camera import CameraProcess, build_counter, load_camera_config
from streams.edge.camera_files import load_calibration, read_calibration, write_calibration
from streams.offline.vision_truth import read_mot_boxes

ROOT = Path(__file__).resolve().parents[2]
PETS = ROOT.parent / "shared" / "data" / "vision" / "pets09-s2l1"
needs_pets = pytest.mark.skipif(not PETS.is_dir(), reason="shared PETS frames not present")
POLYGON = "[[0, 150], [300, 150], [520, 120], [768, 80], [768, 576], [0, 576]]"
# The PETS camera of the demo site, with no `method`: the calibration's winner decides.
SITE = f"""
[site]
id = "calib-test"
name = "calibrate test"

[defaults.thresholds]
walkway = {{ warning = 2.0, critical = 3.0 }}

[[zones]]
id = "plaza"
name = "plaza"
kind = "walkway"
area_m2 = 590.0

[[sources]]
id = "cam"
kind = "camera"
zones = ["plaza"]

[sources.camera]
frame_size = [768, 576]
fps = 7
calibration = "cal/cam.json"
polygons = {{ plaza = {POLYGON} }}
person_height = [[167, 59], [396, 109]]
{{method}}
"""


def _site(tmp_path: Path, method: str = "") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace("{method}", method))
    return path


def _choice(method: str) -> Calibration:
    won = MethodChoice(method=method, mae_cv=0.5, folds=5, frames=100, compared={method: 0.5})
    return Calibration(
        camera_id="cam", method="hog", created="", frames=100, chosen=won,
        density=read_calibration(bundled_site("calibration/pets-cam1-density.json")).density,
    )  # fmt: skip


def test_the_camera_counts_with_the_calibrated_method_unless_told_one(tmp_path):
    site = _site(tmp_path)
    write_calibration(_choice("density"), tmp_path / "cal" / "cam.json")
    config = load_camera_config(site, "cam")
    cal = load_calibration(config)
    assert CameraProcess("cam", config, lambda r: None, calibration=cal).counter.method == "density"
    assert build_counter(config, cal, "hog").method == "hog"  # --method
    assert build_counter(config, None).method == "hog"  # no calibration: the default
    # `method` written in the site file is the user's choice too.
    told = load_camera_config(_site(tmp_path, 'method = "hog"'), "cam")
    assert build_counter(told, cal).method == "hog"


def test_version_1_files_read_and_newer_ones_are_refused(tmp_path):
    v1 = read_calibration(bundled_site("calibration/pets-cam1-density.json"))
    assert v1.v == 1 and v1.chosen is None
    path = tmp_path / "new.json"
    path.write_text(v1.to_json().replace('"v": 1', '"v": 99'))
    with pytest.raises(ValueError, match="v99"):
        read_calibration(path)


def test_folds_are_contiguous_blocks_and_density_never_sees_its_test_block():
    blocks = contiguous_blocks(10, 3)
    assert all((np.diff(b) == 1).all() for b in blocks)
    assert np.concatenate(blocks).tolist() == list(range(10))
    # A feature that equals the count in the first half and is unrelated in the second: a fit
    # that saw the held-out half would score near zero there; a blocked one cannot.
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, 40).astype(float)
    x = np.c_[counts, rng.normal(size=40), rng.normal(size=40)]
    x[20:, 0] = rng.normal(size=20) * 3
    feats = [{"z": row} for row in x]
    choice, thr = compare_methods(
        None,
        [None] * 40,
        {"z": list(counts)},
        feats,
        folds=2,
        hog=False,  # type: ignore[arg-type]
    )
    assert thr is None and set(choice.compared) == {"density"} and choice.method == "density"
    assert choice.mae_cv > 0.8 and set(choice.skipped) == {"hog", "dnn"}


@needs_pets
def test_calibrate_writes_the_winner_and_the_camera_uses_it(tmp_path, capsys):
    # 38 PETS frames delivered at 480x360: calibrate and count at the size the camera sends.
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    numbers = list(range(1, 151, 4))  # 38 frames
    polygon = [(0, 150), (300, 150), (520, 120), (768, 80), (768, 576), (0, 576)]
    truth = truth_counts(read_mot_boxes(PETS / "gt_frames_001-150.txt"), numbers, polygon)
    lines = ["frame,count"]
    for k, f in enumerate(numbers, start=1):
        image = cv2.imread(str(PETS / "img1" / f"{f:06d}.jpg"))
        small = cv2.resize(image, (480, 360), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(frames_dir / f"{k:06d}.jpg"), small)
        lines.append(f"{k},{truth[k - 1]}")
    (tmp_path / "truth.csv").write_text("\n".join(lines) + "\n")
    site = _site(tmp_path)
    rc = main(["calibrate", "--frames", str(frames_dir), "--truth", str(tmp_path / "truth.csv"),
               "--camera-id", "cam", "--site", str(site), "--folds", "4"])  # fmt: skip
    assert rc == 0
    cal = read_calibration(tmp_path / "cal" / "cam.json")
    chosen = cal.chosen
    assert cal.v == 2 and chosen is not None and chosen.folds == 4 and chosen.frames == len(numbers)
    assert cal.frame_size == (480, 360)
    assert set(chosen.compared) == {"hog", "density"} and "dnn" in chosen.skipped
    assert chosen.mae_cv == min(chosen.compared.values())
    assert chosen.compared[chosen.method] == chosen.mae_cv
    assert '"chosen"' in capsys.readouterr().out
    # The camera, with no method of its own, counts these frames with the winner.
    out = tmp_path / "counts.csv"
    rc = main(["camera", "--source", str(frames_dir), "--camera-id", "cam", "--site", str(site),
               "--out", str(out), "--no-flow"])  # fmt: skip
    assert rc == 0 and out.is_file()
    config = load_camera_config(site, "cam")
    assert build_counter(config, load_calibration(config)).method == chosen.method


def test_density_counts_frames_brought_to_the_size_it_was_fitted_on():
    square = {"z": [(0, 0), (64, 0), (64, 64), (0, 64)]}
    config = CameraConfig(method="density", polygons=square, frame_size=(64, 64))
    cal = Calibration(camera_id="c", method="density", created="", frames=1,
                      frame_size=(64, 64), density=IDENTITY_MODEL)  # fmt: skip
    counter = make_counter(config, cal)
    assert set(counter.count(np.zeros((32, 32, 3), np.uint8))) == {"z"}
    assert counter.layout.shape == (32, 32)  # zones of the delivered frame (flow, overlay)
    assert counter.features.layout.shape == (64, 64)  # features at the fitted size
