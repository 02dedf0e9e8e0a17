"""Camera settings: the ``[sources.camera]`` table of a site file, validated.

Image coordinates are pixels of the camera's native frame (x right, y down). Zones are drawn on
the ground: a person belongs to the zone that holds their feet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors.vision.geometry import Homography, PersonHeight

XY = tuple[float, float]
Method = Literal["hog", "density", "dnn"]


class GroundPoint(BaseModel):
    """One surveyed point: where it is in the image (px) and on the ground (m)."""

    model_config = ConfigDict(extra="forbid")

    image: XY
    ground: XY


class HogSettings(BaseModel):
    """OpenCV HOG people detector (Dalal & Triggs 2005) settings."""

    model_config = ConfigDict(extra="forbid")

    # "default": 64x128 window (INRIA); "daimler": 48x96 window, for smaller people.
    detector: Literal["default", "daimler"] = "default"
    # Upscale the frame first: the default window finds people of about 100 px and taller.
    # "auto": from ``person_height`` at the delivered frame size, enough to bring the zones'
    # far-quarter person to ~96 px (0.5x to 4x; without a height model 1x on ``frame_size``
    # frames). A number: the factor for ``frame_size`` frames, scaled with the stream's size.
    # See ``detectors.vision.hog.hog_plan``.
    upscale: Annotated[float, Field(ge=0.5, le=4)] | Literal["auto"] = "auto"
    hit_threshold: float = 0.0
    # Pixels between windows when people are the window's size (finer if they stay smaller).
    win_stride: Annotated[int, Field(ge=1, le=32)] = 8
    pyramid_scale: Annotated[float, Field(gt=1, le=2)] = 1.05
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.3
    # With ``person_height``: keep boxes whose height is within these ratios of the expected
    # height at their foot row (the minimum-size filter by image row).
    min_height_ratio: Annotated[float, Field(ge=0, le=2)] = 0.6
    max_height_ratio: Annotated[float, Field(ge=1, le=10)] = 1.8


class DensitySettings(BaseModel):
    """Foreground/texture features and their regression (see ``detectors.vision.density``)."""

    model_config = ConfigDict(extra="forbid")

    history: Annotated[int, Field(ge=10, le=100_000)] = 300
    var_threshold: Annotated[float, Field(gt=0)] = 16.0
    # Frames fed to the background model before counts are trusted.
    warmup: Annotated[int, Field(ge=0)] = 0


class DnnSettings(BaseModel):
    """Person detector run with ``cv2.dnn`` from a user-supplied ONNX file."""

    model_config = ConfigDict(extra="forbid")

    input_size: tuple[Annotated[int, Field(ge=8)], Annotated[int, Field(ge=8)]] = (640, 640)
    # "yolov8": [1, 4+classes, N]; "yolov5": [1, N, 5+classes]; "ssd": [1, 1, N, 7].
    layout: Literal["auto", "yolov8", "yolov5", "ssd"] = "auto"
    person_class: Annotated[int, Field(ge=0)] = 0
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.4
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.45
    scale: float = 1 / 255
    swap_rb: bool = True
    letterbox: bool = True


class FlowSettings(BaseModel):
    """Dense optical flow (Farnebäck 2003) per zone."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Flow is computed on a frame shrunk by this factor: motion of people survives, cost drops.
    downscale: Annotated[float, Field(gt=0, le=1)] = 0.5
    # Pixels moving slower than this (px per frame at full size) are not counted as moving.
    min_motion_px: Annotated[float, Field(ge=0)] = 0.5


class CameraConfig(BaseModel):
    """How one camera turns frames into counts; parsed from ``[sources.camera]``."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "hog"
    polygons: dict[str, list[XY]]
    frame_size: tuple[int, int] | None = None  # (width, height) the polygons are drawn on
    ground_points: list[GroundPoint] | None = None
    # (foot row, standing height px) pairs; perspective for the hog size filter and density.
    person_height: list[XY] | None = None
    fps: Annotated[float, Field(gt=0, le=1000)] | None = None  # when the stream does not say
    every: Annotated[int, Field(ge=1, le=10_000)] = 1
    calibration: Path | None = None
    model: Path | None = None
    hog: HogSettings = HogSettings()
    density: DensitySettings = DensitySettings()
    dnn: DnnSettings = DnnSettings()
    flow: FlowSettings = FlowSettings()

    @field_validator("polygons")
    @classmethod
    def _polygons_are_areas(cls, v: dict[str, list[XY]]) -> dict[str, list[XY]]:
        if not v:
            raise ValueError("give at least one zone polygon: polygons.<zone_id> = [[x, y], ...]")
        for zone, pts in v.items():
            if len(pts) < 3:
                raise ValueError(f"zone {zone!r}: a polygon needs three or more [x, y] points")
        return v

    @field_validator("ground_points")
    @classmethod
    def _enough_ground_points(cls, v: list[GroundPoint] | None) -> list[GroundPoint] | None:
        if v is None:
            return v
        if len(v) < 4:
            raise ValueError(f"ground_points needs four or more image/ground pairs, got {len(v)}")
        Homography([p.image for p in v], [p.ground for p in v])  # raises on degenerate points
        return v

    @field_validator("person_height")
    @classmethod
    def _height_model(cls, v: list[XY] | None) -> list[XY] | None:
        if v is not None:
            if any(h <= 0 for _, h in v):
                raise ValueError("person_height: heights must be positive pixels")
            PersonHeight(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CameraConfig:
        if self.method == "dnn" and self.model is None:
            raise ValueError("method 'dnn' needs model = 'path/to/detector.onnx'")
        if self.frame_size is not None:
            w, h = self.frame_size
            for zone, pts in self.polygons.items():
                if any(not (0 <= x <= w and 0 <= y <= h) for x, y in pts):
                    raise ValueError(f"zone {zone!r}: polygon point outside the {w}x{h} frame")
        return self

    def homography(self) -> Homography | None:
        if not self.ground_points:
            return None
        pts = self.ground_points
        return Homography([p.image for p in pts], [p.ground for p in pts])

    def height_model(self) -> PersonHeight | None:
        return PersonHeight(self.person_height) if self.person_height else None

    def resolve_paths(self, base: Path) -> CameraConfig:
        """Relative ``calibration`` and ``model`` paths are relative to the site file."""
        upd = {}
        for key in ("calibration", "model"):
            p = getattr(self, key)
            if p is not None and not p.is_absolute():
                upd[key] = base / p
        return self.model_copy(update=upd)
