"""Fruin's level of service (A-F) from density, by kind of space.

Source: J. J. Fruin, *Pedestrian Planning and Design*, rev. ed. 1987, ch. 4 — the lower bound of
area per person (m²/p) of levels A..E; anything denser is F.
"""

from __future__ import annotations

from typing import Literal

ZoneKind = Literal["walkway", "queuing", "stairway"]
LEVELS = ("A", "B", "C", "D", "E", "F")

# Fruin 1987 ch. 4: minimum m² per person for levels A..E (F below the last).
AREA_PER_PERSON: dict[str, tuple[float, ...]] = {
    "walkway": (3.25, 2.32, 1.39, 0.93, 0.46),
    "queuing": (1.21, 0.93, 0.65, 0.28, 0.19),
    "stairway": (1.86, 1.39, 0.93, 0.65, 0.37),
}


def level_of_service(density: float, kind: ZoneKind) -> str:
    """Fruin level of service for ``density`` persons/m² in a space of ``kind``.

    >>> level_of_service(0.2, "walkway")
    'A'
    >>> level_of_service(1.0, "walkway")   # 1.0 m²/p lies in D (0.93-1.39)
    'D'
    >>> level_of_service(1.0, "queuing")   # the same crowd standing: restricted circulation
    'B'
    >>> level_of_service(6.0, "queuing")
    'F'
    """
    if density < 0:
        raise ValueError(f"density must be >= 0, got {density}")
    if density == 0:
        return "A"
    area = 1.0 / density
    for level, bound in zip(LEVELS, AREA_PER_PERSON[kind], strict=False):
        if area >= bound:
            return level
    return "F"


def density_at_level(level: str, kind: ZoneKind) -> float:
    """Density (persons/m²) at which ``level`` begins — for picking thresholds.

    >>> round(density_at_level("E", "walkway"), 2)
    1.08
    """
    return 1.0 / AREA_PER_PERSON[kind][LEVELS.index(level) - 1]
