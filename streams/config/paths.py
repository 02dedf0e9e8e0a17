"""Where crowdsafe finds its bundled files and keeps what it writes.

Bundled files (site files, calibration, the broker's Maven file and config templates, the
command-centre page) are package data, read through :mod:`importlib.resources`, so they travel
with the wheel.

What crowdsafe writes depends on how it runs:

* from a git checkout of crowdsafe (``make demo``, ``make test``): broker and worker state in
  ``<checkout>/.state`` and the Kafka jars in ``<checkout>/deploy/kafka/lib``, both git-ignored;
* installed (a wheel in any virtual environment): state in ``$XDG_STATE_HOME/crowdsafe``
  (``~/.local/state/crowdsafe``) and jars in ``$XDG_CACHE_HOME/crowdsafe/kafka``
  (``~/.cache/crowdsafe/kafka``).

``CROWDSAFE_STATE_DIR`` and ``CROWDSAFE_KAFKA_LIB_DIR`` override both (``settings.py``).
Nothing here runs at import time: the environment is read when a default is asked for.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path

# The folder ``streams`` was imported from: site-packages when installed, the checkout in
# development (an editable install or ``python -m`` from the checkout).
_IMPORT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SITE = "guangzhou-station.toml"


@cache
def checkout_root() -> Path | None:
    """The git checkout this code runs from, or None when installed.

    A checkout is a folder holding ``.git`` (a folder, or a file in a git worktree) and a
    ``pyproject.toml`` whose project is crowdsafe, next to the imported ``streams`` package;
    site-packages has neither.
    """
    root = _IMPORT_ROOT
    pyproject = root / "pyproject.toml"
    if not ((root / ".git").exists() and pyproject.is_file()):
        return None
    try:
        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if name == "crowdsafe" else None


def _package_path(package: str, *parts: str) -> Path:
    """A file shipped in ``package``. Wheels are always unpacked on install, so the resource
    is a real file that Java, Maven and ``tomllib`` can open by path."""
    return Path(os.fspath(files(package).joinpath(*parts)))


def sites_dir() -> Path:
    """The bundled site files (``streams/config/sites/``) and their calibration files."""
    return _package_path("streams.config", "sites")


def bundled_site(name: str = DEFAULT_SITE) -> Path:
    """A bundled site file by file name, e.g. ``pets09-demo.toml``."""
    return sites_dir() / name


def kafka_resource(name: str) -> Path:
    """A file of the local broker's bundle: ``pom.xml``, ``server.properties``, ``log4j2.xml``."""
    return _package_path("streams.ops", "kafka", name)


def _xdg(variable: str, fallback: str) -> Path:
    # The XDG spec says relative values are invalid and must be ignored.
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def default_state_dir() -> Path:
    root = checkout_root()
    if root is not None:
        return root / ".state"
    return _xdg("XDG_STATE_HOME", ".local/state") / "crowdsafe"


def default_kafka_lib_dir() -> Path:
    root = checkout_root()
    if root is not None:
        return root / "deploy" / "kafka" / "lib"
    return _xdg("XDG_CACHE_HOME", ".cache") / "crowdsafe" / "kafka"


def shared_data_dir(*parts: str) -> Path | None:
    """The team's shared data sets (``<checkout>/../shared/data``: real counts, PETS frames),
    which are not package data; None when installed, where commands need an explicit option."""
    root = checkout_root()
    return None if root is None else root.parent.joinpath("shared", "data", *parts)
