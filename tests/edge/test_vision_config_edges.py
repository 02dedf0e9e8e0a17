"""Cameras configured on one frame size and run on another, and other edges of the config."""

import numpy as np
import pytest

from detectors.vision.config import CameraConfig
from detectors.vision.counters import ZoneLayout, make_counter
from streams.config.paths import bundled_site
from streams.edge.camera import load_camera_config
from streams.offline.vision_truth import read_counts_csv

SITE = bundled_site("pets09-demo.toml")


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_heights_and_ground_areas_follow_the_frame_size(scale):
    config = load_camera_config(SITE, "pets-cam1")
    native = ZoneLayout(config, (576, 768))
    scaled = ZoneLayout(config, (round(576 * scale), round(768 * scale)))
    zone = "pets-plaza"
    area = scaled.homography.area_m2(scaled.polygons[zone])
    assert area == pytest.approx(native.homography.area_m2(native.polygons[zone]), rel=0.01)
    row = 396  # a foot row of the native frames, where people are ~109 px tall
    assert scaled.heights[round(row * scale)] == pytest.approx(
        native.heights[row] * scale, rel=0.02
    )


def test_a_polygon_outside_the_frame_is_a_clear_error_not_a_crash():
    config = CameraConfig(polygons={"far": [(2000, 2000), (2100, 2000), (2100, 2100)]})
    with pytest.raises(ValueError, match="far lie outside the 640x480 frame"):
        ZoneLayout(config, (480, 640))


def test_the_density_method_refuses_to_count_without_a_calibration():
    config = CameraConfig(method="density", polygons={"z": [(0, 0), (10, 0), (10, 10)]})
    with pytest.raises(ValueError, match="needs a calibration file"):
        make_counter(config)


def test_truth_files_with_a_byte_order_mark_are_read(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_bytes(b"\xef\xbb\xbfframe,count\r\n1,3\r\n2,5\r\n")
    assert read_counts_csv(truth) == {1: 3.0, 2: 5.0}


def test_all_zero_frames_count_nobody():
    config = load_camera_config(SITE, "pets-cam1")
    counts = make_counter(config).count(np.zeros((576, 768, 3), np.uint8))
    assert counts == {"pets-plaza": 0}


def test_auto_upscale_brings_far_people_to_the_window_size_and_needs_a_height_model():
    config = load_camera_config(SITE, "pets-cam1")
    auto = config.model_copy(update={"hog": config.hog.model_copy(update={"upscale": "auto"})})
    counter = make_counter(auto)
    # PETS people are 60-110 px tall; the default window holds a 96 px person.
    assert 1.2 < counter.plan(ZoneLayout(auto, (576, 768))).upscale < 1.7
    # Frames twice as large hold people twice as tall: half the upscale, the same people.
    at_1x = counter.plan(ZoneLayout(auto, (576, 768))).upscale
    at_2x = counter.plan(ZoneLayout(auto, (1152, 1536))).upscale
    assert at_2x == pytest.approx(at_1x / 2, rel=1e-3)
    flat = CameraConfig(polygons={"z": [(0, 0), (640, 0), (640, 480), (0, 480)]})
    assert make_counter(flat).plan(ZoneLayout(flat, (480, 640))).upscale == 1.0
