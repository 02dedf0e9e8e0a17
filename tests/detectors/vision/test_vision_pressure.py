import numpy as np
import pytest

from detectors.vision.config import CameraConfig
from detectors.vision.counters import ZoneLayout
from detectors.vision.flow import FlowMeter
from detectors.vision.pressure import crowd_pressure, velocity_stats


def _meter(ground_points=None):
    cfg = CameraConfig(
        polygons={"z": [(0, 0), (200, 0), (200, 200), (0, 200)]},
        ground_points=ground_points,
        flow={"downscale": 1.0, "min_motion_px": 0.0},
    )
    meter = FlowMeter(cfg)
    meter._setup(ZoneLayout(cfg, (200, 200)))
    return meter


def test_variance_of_a_synthetic_flow_field_in_metres():
    rng = np.random.default_rng(4)
    sigma, mean = 0.5, np.array([2.0, -1.0])  # px per frame
    flow = (mean + sigma * rng.standard_normal((200, 200, 2))).astype(np.float32)
    # 1 px = 0.01 m everywhere; frames 0.1 s apart: 1 px/frame = 0.1 m/s.
    gp = [
        {"image": [x, y], "ground": [x / 100, y / 100]}
        for x, y in [(0, 0), (200, 0), (200, 200), (0, 200)]
    ]
    motion = _meter(gp).zone_motion(flow, dt=0.1)["z"]
    assert motion.metric
    # Var(V) = 2 sigma^2 (two components), in (m/s)^2.
    assert motion.stats.variance == pytest.approx(2 * (sigma * 0.1) ** 2, rel=0.05)
    assert motion.stats.mean_vx == pytest.approx(0.2, abs=0.005)
    assert motion.stats.mean_vy == pytest.approx(-0.1, abs=0.005)
    rho = 3.0
    assert crowd_pressure(rho, motion.stats.variance) == pytest.approx(rho * 0.005, rel=0.05)


def test_a_block_moving_as_one_has_no_pressure():
    flow = np.full((200, 200, 2), (3.0, 0.0), np.float32)
    stats = _meter().zone_motion(flow, dt=0.5)["z"].stats
    assert stats.variance == pytest.approx(0.0, abs=1e-9)
    assert stats.speed == pytest.approx(6.0)  # px/s without ground points
    assert stats.direction_deg == pytest.approx(0.0)


def test_flow_between_real_frames_finds_the_shift():
    rng = np.random.default_rng(0)
    img = cv2_blur((rng.random((200, 240)) * 255).astype(np.uint8))
    a, b = img[:, 20:220], img[:, 16:216]  # scene moves 4 px to the right
    m = _meter()
    layout = ZoneLayout(m.config, (200, 200))
    assert m.update(a, 0, layout) == {}
    stats = m.update(b, 100, layout)["z"].stats
    assert stats.mean_vx == pytest.approx(40.0, rel=0.15)  # 4 px per 0.1 s


def cv2_blur(img):
    import cv2

    return cv2.GaussianBlur(img, (7, 7), 2)


def test_velocity_stats_weights_and_empty():
    assert velocity_stats(np.array([]), np.array([])) is None
    s = velocity_stats(np.array([0.0, 2.0]), np.array([0.0, 0.0]), np.array([3.0, 1.0]))
    assert s.mean_vx == pytest.approx(0.5) and s.variance == pytest.approx(0.75)
    with pytest.raises(ValueError):
        crowd_pressure(-1, 0.1)
