"""detectors/ stays pure science: no file, network or video I/O (the edge and the worker do it)."""

from __future__ import annotations

import ast
from pathlib import Path

import detectors

# Calls and imports that read or write the outside world.
IO_ATTRS = {
    "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink",
    "imread", "imwrite", "VideoCapture", "VideoWriter", "readNet",
}  # fmt: skip
IO_NAMES = {"open"}
IO_MODULES = {"socket", "urllib", "requests", "http", "kafka", "aiokafka", "faust", "shutil"}


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in IO_ATTRS or (isinstance(f, ast.Name) and name in IO_NAMES):
                found.append(f"{path.name}:{node.lineno}: {name}()")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [
                f"{path.name}:{node.lineno}: import {m}"
                for m in mods
                if m and m.split(".")[0] in IO_MODULES
            ]
    return found


def test_detectors_do_no_io() -> None:
    root = Path(detectors.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    offences = [o for f in files for o in _offences(f)]
    assert offences == []


def test_the_check_sees_io(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom pathlib import Path\nPath('x').read_text()\nopen('y')\n")
    assert _offences(sample) == [
        "sample.py:1: import socket",
        "sample.py:3: read_text()",
        "sample.py:4: open()",
    ]
