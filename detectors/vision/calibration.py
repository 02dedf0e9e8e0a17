"""The calibration ``crowdsafe calibrate`` fits and the camera process applies, as JSON text.

Files are the edge's business (``streams/edge/camera_files.py``): detectors/ does no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.vision.config import Method

# 1: density regression, HOG threshold, metrics. 2: adds ``chosen`` (the method comparison)
# and ``frame_size``.
# A version-1 file reads as one with nothing chosen.
VERSION = 2


class LinearModel(BaseModel):
    """count = intercept + sum(coef * (feature - mean) / scale), clipped at zero."""

    model_config = ConfigDict(extra="forbid")

    features: list[str]
    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    ridge: float = 0.0


class MethodChoice(BaseModel):
    """The counting method with the least cross-validated error on the labelled frames."""

    model_config = ConfigDict(extra="forbid")

    method: Method
    mae_cv: float  # people per zone and frame, on frames held out in contiguous blocks
    folds: int = Field(ge=2)
    frames: int = Field(ge=1)  # labelled frames the methods were compared on
    compared: dict[str, float]  # every method compared -> its cross-validated MAE
    skipped: dict[str, str] = {}  # method -> why it was not compared


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = VERSION
    camera_id: str
    method: str
    created: str
    frames: int = Field(ge=0)
    # (width, height) of the frames it was fitted on; the density counter brings frames of
    # another size to it (None in version-1 files: frames are used as delivered).
    frame_size: tuple[int, int] | None = None
    density: LinearModel | None = None
    # Settings that override the site file's [sources.camera.hog] table.
    hog: dict[str, Any] = {}
    # How well it did on the labelled frames (mae_train, mae_cv, ...).
    metrics: dict[str, float] = {}
    # The winner of the comparison; the camera counts with it unless told a method.
    chosen: MethodChoice | None = None

    @model_validator(mode="after")
    def _known_version(self) -> Calibration:
        if not 1 <= self.v <= VERSION:
            raise ValueError(
                f"calibration format v{self.v}: this crowdsafe reads v1 to v{VERSION} "
                "(recalibrate, or upgrade crowdsafe)"
            )
        return self

    def to_json(self) -> str:
        """Indented JSON with a final newline: the file is meant to be read and diffed."""
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Calibration:
        return cls.model_validate_json(text)
