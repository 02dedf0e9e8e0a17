"""HOG follows the person height of the frame actually delivered, not the one configured."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.vision.config import CameraConfig, HogSettings
from detectors.vision.counters import ZoneLayout, make_counter
from detectors.vision.hog import UPSCALE_RANGE, hog_plan, zone_person_heights
from detectors.vision.metrics import mae, truth_counts
from streams.config.paths import bundled_site
from streams.edge.camera import load_camera_config
from streams.offline.vision_truth import read_mot_boxes

ROOT = Path(__file__).resolve().parents[3]
PETS = ROOT.parent / "shared" / "data" / "vision" / "pets09-s2l1"
SITE = bundled_site("pets09-demo.toml")
needs_pets = pytest.mark.skipif(not PETS.is_dir(), reason="shared PETS frames not present")


@pytest.mark.parametrize("scale", [0.4, 0.625, 1.0, 1.5])
def test_the_plan_keeps_people_at_the_window_size_whatever_the_frame_size(scale):
    full = hog_plan(HogSettings(), far_px=60.0, near_px=110.0)
    plan = hog_plan(HogSettings(), far_px=60.0 * scale, near_px=110.0 * scale)
    # The upscaled scene is the same: same people in window pixels, same stride and pyramid.
    assert plan.upscale * scale == pytest.approx(full.upscale, rel=1e-3)
    assert (plan.win_stride, plan.padding, plan.nlevels) == (
        full.win_stride,
        full.padding,
        full.nlevels,
    )


def test_a_fixed_upscale_was_chosen_on_the_configured_frame_size():
    s = HogSettings(upscale=1.6)
    assert hog_plan(s, None, None, frame_scale=1.0).upscale == 1.6
    assert hog_plan(s, None, None, frame_scale=0.625).upscale == pytest.approx(2.56)
    assert hog_plan(s, None, None, frame_scale=2.0).upscale == pytest.approx(0.8)


def test_people_too_small_for_the_largest_upscale_get_a_finer_stride():
    lo, hi = UPSCALE_RANGE
    plan = hog_plan(HogSettings(), far_px=10.0, near_px=20.0)
    assert plan.upscale == hi and plan.win_stride < HogSettings().win_stride
    assert hog_plan(HogSettings(), far_px=1000.0, near_px=2000.0).upscale == lo


def test_the_pyramid_stops_at_the_largest_person_the_size_filter_keeps():
    s = HogSettings()
    assert hog_plan(s, 60.0, 60.0).nlevels < hog_plan(s, 60.0, 240.0).nlevels <= 64
    assert hog_plan(s, None, None).nlevels == 64  # no geometry: OpenCV's default


def test_the_counter_plans_from_the_zones_at_the_delivered_size():
    config = load_camera_config(SITE, "pets-cam1")  # fixed upscale 1.6 on 768x576
    counter = make_counter(config)
    assert counter.plan(ZoneLayout(config, (576, 768))).upscale == pytest.approx(1.6)
    assert counter.plan(ZoneLayout(config, (360, 480))).upscale == pytest.approx(2.56)
    auto = config.model_copy(update={"hog": HogSettings()})
    small = make_counter(auto).plan(ZoneLayout(auto, (360, 480)))
    large = make_counter(auto).plan(ZoneLayout(auto, (576, 768)))
    assert small.upscale == pytest.approx(large.upscale * 576 / 360, rel=1e-3)
    flat = CameraConfig(polygons={"z": [(0, 0), (64, 0), (64, 64)]}, frame_size=(64, 64))
    # No height model: 1x on the configured frames, 2x on frames half as large.
    assert make_counter(flat).plan(ZoneLayout(flat, (32, 32))).upscale == 2.0


def _pets_mae(config: CameraConfig, size: tuple[int, int], step: int) -> float:
    boxes = read_mot_boxes(PETS / "gt_frames_001-150.txt")
    frames = list(range(1, 151, step))
    truth = truth_counts(boxes, frames, config.polygons["pets-plaza"])
    counter = make_counter(config)
    counts = []
    for f in frames:
        image = cv2.resize(
            cv2.imread(str(PETS / "img1" / f"{f:06d}.jpg")), size, interpolation=cv2.INTER_AREA
        )
        counts.append(counter.count(image)["pets-plaza"])
    return mae(counts, truth)


@needs_pets
@pytest.mark.parametrize("upscale", ["auto", 1.6])
def test_hog_counts_pets_at_480x360_as_well_as_at_full_size(upscale):
    config = load_camera_config(SITE, "pets-cam1")
    config = config.model_copy(update={"hog": config.hog.model_copy(update={"upscale": upscale})})
    # These 30 frames (every 5th), INTER_AREA to 480x360: before the plan followed the delivered
    # size, auto 1.40 and 1.6 2.23 (auto capped at 2x; 1.6 kept as on 768x576); after, 0.93 and
    # 0.83. 1.2 is the aim. All 150 frames: README's camera table.
    assert _pets_mae(config, (480, 360), 5) <= 1.2


def test_the_far_people_are_looked_for_below_the_horizon_only():
    # TUD-Campus: heights 119 px at row 338 to 317 px at row 468, so the fitted line reaches zero
    # at about row 260; the zone (the whole frame) reaches row 0, where nobody can stand.
    tud = load_camera_config(SITE, "tud-cam")
    layout = ZoneLayout(tud, (480, 640))
    assert 255 <= np.flatnonzero(layout.standing)[0] <= 265
    far, near = zone_person_heights(layout)
    assert far > tud.height_model().floor_px  # not the clipped height of rows above the horizon
    # PETS: the horizon is above the frame; every row of the zones counts.
    assert ZoneLayout(load_camera_config(SITE, "pets-cam1"), (576, 768)).standing.all()
