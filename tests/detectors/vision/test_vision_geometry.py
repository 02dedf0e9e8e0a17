import numpy as np
import pytest
from pydantic import ValidationError

from detectors.vision.config import CameraConfig
from detectors.vision.counters import ZoneLayout
from detectors.vision.geometry import Homography, PersonHeight, body_mask, polygon_mask

SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]


def test_person_outside_polygon_is_not_counted():
    cfg = CameraConfig(polygons={"a": SQUARE, "b": [(400, 0), (640, 0), (640, 480), (400, 480)]})
    layout = ZoneLayout(cfg, (480, 640))
    boxes = np.array(
        [
            [180, 150, 40, 100],  # feet at (200, 250): in a
            [180, 260, 40, 100],  # feet at (200, 360): below a, in no zone
            [500, 100, 40, 100],  # feet at (520, 200): in b
            [330, 100, 40, 100],  # between the zones
        ],
        float,
    )
    assert layout.count_feet(boxes) == {"a": 1, "b": 1}


def test_polygons_rescale_with_the_stream():
    cfg = CameraConfig(polygons={"a": SQUARE}, frame_size=(640, 480))
    layout = ZoneLayout(cfg, (240, 320))  # the camera now sends half size
    assert layout.count_feet(np.array([[90, 50, 20, 50]], float)) == {"a": 1}  # feet (100, 100)
    assert layout.feet["a"].sum() == pytest.approx(101 * 101, rel=0.05)


def test_homography_recovers_known_points():
    truth = np.array([[0.02, 0.001, -3.0], [0.0005, 0.05, -8.0], [0.0, 0.0004, 1.0]])
    img = np.array([[100, 400], [600, 420], [500, 150], [200, 140], [350, 300]], float)
    p = np.c_[img, np.ones(len(img))] @ truth.T
    ground = p[:, :2] / p[:, 2:]
    h = Homography(img, ground)
    np.testing.assert_allclose(h.to_ground(np.array([[320.0, 240.0]])), _apply(truth, 320, 240))
    np.testing.assert_allclose(h.to_ground(img), ground, atol=1e-9)


def _apply(m, x, y):
    v = m @ [x, y, 1]
    return [v[:2] / v[2]]


def test_zone_area_on_the_ground():
    h = Homography([(0, 0), (100, 0), (100, 100), (0, 100)], [(0, 0), (5, 0), (5, 5), (0, 5)])
    assert h.area_m2(SQUARE) == pytest.approx(100.0)  # 200 px sides at 0.05 m/px


def test_degenerate_ground_points_are_refused_with_a_message():
    pts = [{"image": [i * 10, i * 10], "ground": [i, i]} for i in range(4)]
    with pytest.raises(ValidationError, match="degenerate"):
        CameraConfig(polygons={"a": SQUARE}, ground_points=pts)
    with pytest.raises(ValidationError, match="four or more"):
        CameraConfig(polygons={"a": SQUARE}, ground_points=pts[:3])


def test_config_messages():
    with pytest.raises(ValidationError, match="needs model"):
        CameraConfig(method="dnn", polygons={"a": SQUARE})
    with pytest.raises(ValidationError, match="three or more"):
        CameraConfig(polygons={"a": [(0, 0), (1, 1)]})
    with pytest.raises(ValidationError, match="outside"):
        CameraConfig(polygons={"a": SQUARE}, frame_size=(200, 200))


def test_body_mask_reaches_one_person_height_above_the_feet():
    feet = polygon_mask((100, 50), [(10, 80), (40, 80), (40, 90), (10, 90)])
    heights = PersonHeight([(0, 20), (99, 20)]).at_rows(100)
    body = body_mask(feet, heights)
    assert body[62, 20] and not body[55, 20] and body[90, 20] and not body[95, 20]
