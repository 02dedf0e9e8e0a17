"""No work at import time: importing any module of ``streams`` or ``detectors`` builds no app,
reads no site file and opens no connection (the app is built by ``build_app(settings)``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter so that nothing is imported yet; every socket connection, every
# read of a .toml file and every Faust app created while importing is recorded.
PROBE = r"""
import builtins, importlib, io, json, pkgutil, socket, sys
seen = {"connect": [], "toml": [], "apps": [], "modules": 0, "errors": []}

def refuse(self, address, *a):
    seen["connect"].append(str(address))
    raise OSError("no connections at import time")

socket.socket.connect = refuse
socket.socket.connect_ex = lambda self, address: refuse(self, address)
real_open, real_io_open = builtins.open, io.open

def watched_open(file, *a, **kw):
    if str(file).endswith(".toml"):
        seen["toml"].append(str(file))
    return real_open(file, *a, **kw)

builtins.open = io.open = watched_open
import faust
real_init = faust.App.__init__

def record_app(self, *a, **kw):
    seen["apps"].append(repr(a[:1]))
    real_init(self, *a, **kw)

faust.App.__init__ = record_app
for package in ("detectors", "streams"):
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        try:
            importlib.import_module(info.name)
            seen["modules"] += 1
        except Exception as exc:
            seen["errors"].append(f"{info.name}: {exc!r}")
print(json.dumps(seen))
"""


def test_importing_every_module_does_no_work(tmp_path):
    env = {
        **os.environ,
        "CROWDSAFE_SITE": str(tmp_path / "missing-site.toml"),
        "KAFKA_BOOTSTRAP": "127.0.0.1:1",  # nothing listens there
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["errors"] == []
    assert seen["modules"] > 50  # every module was really imported
    assert seen["connect"] == []
    assert seen["toml"] == []
    assert seen["apps"] == []


def test_the_worker_app_is_built_by_a_function(tmp_path):
    """Two apps from two settings objects, side by side, each with its own topics."""
    from streams.config.paths import bundled_site
    from streams.config.settings import Settings
    from streams.worker.app import build_app

    site = bundled_site()
    a = build_app(Settings(app_id="a", site=site, state_dir=tmp_path, readings_topic="ra"))
    b = build_app(Settings(app_id="b", site=site, state_dir=tmp_path, readings_topic="rb"))
    assert a.faust is not b.faust
    assert a.faust.conf.id == "a" and b.faust.conf.id == "b"
    assert "ra" in a.topics.inputs.topics and "rb" in b.topics.inputs.topics
    # Every zone of the site is swept by exactly one partition.
    swept = sorted(z for zones in a.zones_by_partition.values() for z in zones)
    assert swept == sorted(z.id for z in a.site.zones)
