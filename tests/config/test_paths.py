"""Default folders: the checkout's own when run from one, XDG user folders when installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import paths
from streams.config.settings import Settings


@pytest.fixture
def imported_from(monkeypatch: pytest.MonkeyPatch):
    """Pretend ``streams`` was imported from a given folder."""

    def use(folder: Path) -> None:
        monkeypatch.setattr(paths, "_IMPORT_ROOT", folder)
        paths.checkout_root.cache_clear()

    yield use
    paths.checkout_root.cache_clear()


def _checkout(root: Path, name: str = "crowdsafe", git_dir: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    if git_dir:
        (root / ".git").mkdir()
    else:  # a git worktree has a .git file
        (root / ".git").write_text("gitdir: /elsewhere\n")
    return root


def test_this_test_runs_from_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWDSAFE_STATE_DIR", raising=False)
    monkeypatch.delenv("CROWDSAFE_KAFKA_LIB_DIR", raising=False)
    root = paths.checkout_root()
    assert root is not None and (root / "tests" / "config" / "test_paths.py").is_file()
    assert Settings().state_dir == root / ".state"  # what `make demo` has always used
    assert Settings().kafka_lib_dir == root / "deploy" / "kafka" / "lib"


def test_a_worktree_is_a_checkout_too(imported_from, tmp_path: Path) -> None:
    imported_from(_checkout(tmp_path / "wt", git_dir=False))
    assert paths.checkout_root() == tmp_path / "wt"
    assert paths.default_state_dir() == tmp_path / "wt" / ".state"


@pytest.mark.parametrize(
    "layout",
    ["site-packages", "other project", "no git"],
)
def test_anything_else_is_an_install(imported_from, tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "x"
    if layout == "site-packages":
        folder.mkdir()
    elif layout == "other project":
        _checkout(folder, name="not-crowdsafe")
    else:
        _checkout(folder)
        (folder / ".git").rmdir()
    imported_from(folder)
    assert paths.checkout_root() is None


def test_installed_defaults_follow_xdg(
    imported_from, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "site-packages").mkdir()
    imported_from(tmp_path / "site-packages")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert paths.default_state_dir() == tmp_path / "home" / ".local" / "state" / "crowdsafe"
    assert paths.default_kafka_lib_dir() == tmp_path / "home" / ".cache" / "crowdsafe" / "kafka"
    assert paths.shared_data_dir("pedestrian") is None

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    settings = Settings()
    assert settings.state_dir == tmp_path / "xdg-state" / "crowdsafe"
    assert settings.kafka_lib_dir == tmp_path / "xdg-cache" / "crowdsafe" / "kafka"

    monkeypatch.setenv("CROWDSAFE_STATE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("CROWDSAFE_KAFKA_LIB_DIR", str(tmp_path / "jars"))
    settings = Settings()
    assert (settings.state_dir, settings.kafka_lib_dir) == (tmp_path / "mine", tmp_path / "jars")


def test_bundled_files_are_package_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWDSAFE_SITE", raising=False)
    assert paths.bundled_site() == paths.sites_dir() / "guangzhou-station.toml"
    assert Settings().site == paths.bundled_site()
    for name in (
        "guangzhou-station.toml",
        "pets09-demo.toml",
        "calibration/pets-cam1-density.json",
    ):
        assert (paths.sites_dir() / name).is_file()
    for name in ("pom.xml", "server.properties", "log4j2.xml"):
        assert paths.kafka_resource(name).is_file()
