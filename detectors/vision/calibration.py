"""The calibration ``crowdsafe calibrate`` fits and the camera process applies, as JSON text.

Files are the edge's business (``streams/edge/camera_files.py``): detectors/ does no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LinearModel(BaseModel):
    """count = intercept + sum(coef * (feature - mean) / scale), clipped at zero."""

    model_config = ConfigDict(extra="forbid")

    features: list[str]
    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    ridge: float = 0.0


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = 1
    camera_id: str
    method: str
    created: str
    frames: int = Field(ge=0)
    density: LinearModel | None = None
    # Settings that override the site file's [sources.camera.hog] table.
    hog: dict[str, Any] = {}
    # How well it did on the labelled frames (mae_train, mae_cv, ...).
    metrics: dict[str, float] = {}

    def to_json(self) -> str:
        """Indented JSON with a final newline: the file is meant to be read and diffed."""
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Calibration:
        return cls.model_validate_json(text)
