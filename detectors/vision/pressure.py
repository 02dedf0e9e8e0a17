"""Velocity statistics of a crowd and Helbing's crowd pressure.

Helbing, Johansson & Al-Abideen 2007, Phys. Rev. E 75, 046109: P = rho * Var(V), the local
density times the local variance of velocities; turbulence set in above about 0.02 /s².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VelocityStats:
    """Velocity field of one zone over one frame interval (units of the inputs, e.g. m/s)."""

    mean_vx: float
    mean_vy: float
    speed: float  # mean of |v| over the moving samples
    direction_deg: float  # of the mean velocity, 0 = +x, counter-clockwise towards +y
    variance: float  # Var(V) = E|v - E v|^2 (trace of the covariance), units²
    moving: int  # samples that moved


def velocity_stats(
    vx: np.ndarray, vy: np.ndarray, weights: np.ndarray | None = None
) -> VelocityStats | None:
    """Weighted mean, speed, direction and variance of velocity samples; None if there are none.

    The variance is of the vector velocity, E|v - <v>|², which Helbing et al. use: a crowd
    moving as one block has none, however fast it goes.

    >>> s = velocity_stats(np.array([1.0, 1.0, -1.0, -1.0]), np.zeros(4))
    >>> s.speed, s.variance, s.mean_vx
    (1.0, 1.0, 0.0)
    """
    vx = np.asarray(vx, np.float64).ravel()
    vy = np.asarray(vy, np.float64).ravel()
    if vx.size == 0:
        return None
    w = np.ones_like(vx) if weights is None else np.asarray(weights, np.float64).ravel()
    total = w.sum()
    if total <= 0:
        return None
    mx, my = (w * vx).sum() / total, (w * vy).sum() / total
    var = (w * ((vx - mx) ** 2 + (vy - my) ** 2)).sum() / total
    speed = (w * np.hypot(vx, vy)).sum() / total
    direction = float(np.degrees(np.arctan2(my, mx)) % 360.0)
    return VelocityStats(float(mx), float(my), float(speed), direction, float(var), int(vx.size))


def crowd_pressure(density_ppm2: float, velocity_variance: float) -> float:
    """Helbing's crowd pressure P = rho * Var(V) in 1/s² (rho in persons/m², Var in m²/s²).

    >>> crowd_pressure(4.0, 0.01)
    0.04
    """
    if density_ppm2 < 0 or velocity_variance < 0:
        raise ValueError("density and variance are non-negative")
    return density_ppm2 * velocity_variance
