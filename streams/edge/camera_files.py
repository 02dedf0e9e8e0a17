"""The camera's files: its calibration JSON and its detector model, named in the site file.

detectors/ works on text and bytes only; reading and writing the files happens here, at the
edge, so a missing or unreadable file is reported with its path.
"""

from __future__ import annotations

from pathlib import Path

from detectors.vision.calibration import Calibration
from detectors.vision.config import CameraConfig


def read_calibration(path: Path) -> Calibration:
    return Calibration.from_json(Path(path).read_text())


def write_calibration(calibration: Calibration, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.to_json())


def load_calibration(config: CameraConfig, path: Path | None = None) -> Calibration | None:
    """``path`` (e.g. ``--calibration``), else the site's ``calibration``, else none."""
    path = path or config.calibration
    return read_calibration(path) if path is not None else None


def read_model(config: CameraConfig, any_method: bool = False) -> bytes | None:
    """The ONNX bytes of a ``dnn`` camera's ``model`` file; None for the other methods unless
    ``any_method`` (calibration compares every method the camera could use)."""
    if (config.method != "dnn" and not any_method) or config.model is None:
        return None
    path = Path(config.model)
    if not path.is_file():
        raise FileNotFoundError(f"dnn model not found: {path}")
    return path.read_bytes()
