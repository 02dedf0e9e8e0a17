"""Density, level of service and source fusion."""

import pytest

from detectors.density import LevelEstimate, density, fuse_levels, integrate_gates
from detectors.los import level_of_service


@pytest.mark.parametrize(
    ("area_per_person", "kind", "level"),
    [
        (3.5, "walkway", "A"),
        (2.0, "walkway", "C"),
        (0.5, "walkway", "E"),
        (0.4, "walkway", "F"),
        (1.0, "queuing", "B"),
        (0.2, "queuing", "E"),
        (0.15, "queuing", "F"),
        (0.7, "stairway", "D"),
        (0.3, "stairway", "F"),
    ],
)
def test_fruin_levels_by_kind(area_per_person, kind, level):
    assert level_of_service(1 / area_per_person, kind) == level


def test_density_clamps_negative_occupancy_and_rejects_zero_area():
    assert density(-3, 10) == 0.0
    with pytest.raises(ValueError):
        density(10, 0)


def test_fusion_ignores_zero_weight_total_and_weights_sources():
    assert fuse_levels([LevelEstimate("a", 100, 0.0)]) is None
    assert fuse_levels([LevelEstimate("a", 100, 1.0), LevelEstimate("b", 200, 1.0)]) == 150


def test_gate_integration_never_negative():
    assert integrate_gates(5, 3, 1) == 7
    assert integrate_gates(5, 0, 9) == 0
