"""crowdsafe as an installed package, outside the checkout.

The wheel is built from a copy of the sources and installed (``--no-deps``) into a fresh
virtual environment in a temporary folder; the dependencies come from the test's own
environment through a ``.pth`` line (plain paths only: the editable crowdsafe of that
environment is not activated, so the wheel's copy is what runs). Every command then runs with
its working directory, ``HOME`` and XDG folders in the temporary folder, and the checkout must
come out untouched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.commands.schemas import schema_files
from streams.testing import free_port

CHECKOUT = Path(__file__).resolve().parents[2]
# Folders of the checkout that other processes may write to while this test runs (the
# shared broker's data, bytecode of the test run itself); nothing installed writes there.
_BUSY = {".git", ".venv", "__pycache__", ".state", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Installed:
    venv: Path
    home: Path
    work: Path  # the working directory of every command
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CROWDSAFE_", "XDG_", "PYTHON")) and k not in ("VIRTUAL_ENV",)
        }
        env.update(
            HOME=str(self.home),
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            # Maven keeps using the real local repository: no download, just a copy.
            MAVEN_OPTS=f"-Dmaven.repo.local={Path.home() / '.m2' / 'repository'}",
            **extra,
        )
        return env

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.work,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str, **env: str) -> str:
        result = self.run("python", "-c", code, **env)
        assert result.returncode == 0, result.stderr
        return result.stdout


def _snapshot(root: Path) -> set[Path]:
    found = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _BUSY]
        found.update(Path(folder, n).relative_to(root) for n in names)
    return found


def _build_wheel(out: Path) -> Path:
    """Build from a copy of what the package is made of, so the build leaves no ``build/`` or
    ``*.egg-info`` in the checkout and cannot pick up files that are not in it."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, src / name)
    for package in ("streams", "detectors"):
        shutil.copytree(
            CHECKOUT / package, src / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(out / "dist"), str(src)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (out / "dist").glob("crowdsafe-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("install")
    assert not tmp.resolve().is_relative_to(CHECKOUT)
    before = _snapshot(CHECKOUT)
    wheel = _build_wheel(tmp / "build")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The test environment's pip installs into the new environment (it has no pip of its own).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "crowdsafe-test-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    home, work = tmp / "home", tmp / "work"
    home.mkdir()
    work.mkdir()
    yield Installed(venv=venv, home=home, work=work, wheel=wheel)
    assert _snapshot(CHECKOUT) == before, "the installed package wrote into the checkout"


def test_the_wheel_runs_outside_the_checkout(installed: Installed) -> None:
    assert installed.wheel.stat().st_size < 1_000_000
    where = json.loads(
        installed.python(
            "import json, streams; from streams.config.settings import Settings; s = Settings();"
            "print(json.dumps({'streams': streams.__file__, 'site': str(s.site),"
            " 'state': str(s.state_dir), 'jars': str(s.kafka_lib_dir)}))"
        )
    )
    assert Path(where["streams"]).is_relative_to(installed.venv)
    assert Path(where["site"]).is_relative_to(installed.venv) and Path(where["site"]).is_file()
    assert where["state"] == str(installed.home / ".local" / "state" / "crowdsafe")
    assert where["jars"] == str(installed.home / ".cache" / "crowdsafe" / "kafka")

    help_ = installed.run("crowdsafe", "--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("backtest", "simulate", "kafka", "worker", "camera"):
        assert command in help_.stdout


def test_files_that_are_not_package_data_need_an_option(installed: Installed) -> None:
    page = installed.python(
        "from importlib.resources import files;"
        "print(len(files('streams.centre').joinpath('web', 'index.html').read_text()))"
    )
    assert int(page) > 300  # the command-centre page is package data
    evaluate = installed.run("crowdsafe", "evaluate", "--quick")
    assert evaluate.returncode == 2
    assert "no default outside a checkout); pass --data DIR" in evaluate.stderr
    schemas = installed.run("crowdsafe", "schemas")
    assert schemas.returncode == 0, schemas.stderr
    written = {p.name for p in (installed.work / "schemas").iterdir()}
    assert written == set(schema_files())


def test_backtest_scores_a_csv(installed: Installed) -> None:
    series = installed.work / "counts.csv"
    rows = [("timestamp", "value")] + [
        (1_764_000_000 + 900 * i, 40 + (i % 8)) for i in range(96)
    ]  # one day at 15 min
    series.write_text("\n".join(f"{t},{v}" for t, v in rows) + "\n")
    result = installed.run("crowdsafe", "backtest", "counts.csv", "--area", "20")
    assert result.returncode == 0, result.stderr
    out = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(out) == 96
    assert list(out[0]) == [
        "timestamp", "value", "anomaly_score", "density", "minutes_to_critical", "alert",
    ]  # fmt: skip
    assert [float(r["value"]) for r in out] == [float(v) for _, v in rows[1:]]
    assert [float(r["density"]) for r in out] == pytest.approx([v / 20 for _, v in rows[1:]])


@pytest.mark.kafka
def test_simulate_publishes_the_site_to_a_broker(
    installed: Installed, kafka_bootstrap: str
) -> None:
    from kafka import KafkaConsumer

    from streams.config.site import load_site
    from streams.ops.topics import ensure_topics

    topic = f"t-install-{uuid.uuid4().hex[:8]}.readings"
    ensure_topics(kafka_bootstrap, {topic: 2})  # auto-creation is off on the local broker
    bundled = installed.python(
        "from streams.config.paths import bundled_site; print(bundled_site())"
    )
    site = installed.work / "my-site.toml"
    shutil.copy(bundled.strip(), site)
    result = installed.run(
        "crowdsafe", "simulate", "--site", str(site), "--scenario", "normal",
        "--duration", "30", "--speed", "0", "--quiet",
        KAFKA_BOOTSTRAP=kafka_bootstrap, CROWDSAFE_READINGS_TOPIC=topic,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout.split("done, ")[1].split()[0])
    assert sent > 0

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        readings = [r for m in consumer for r in json.loads(m.value)["readings"]]
    finally:
        consumer.close()
    assert len(readings) == sent
    expected = load_site(site)
    assert {r["zone_id"] for r in readings} <= set(expected.zone_by_id)
    assert {r["source_id"] for r in readings} == set(expected.source_by_id)


@pytest.mark.kafka
def test_kafka_up_status_down_with_user_folders(installed: Installed) -> None:
    port = free_port()
    while (controller := free_port()) == port:
        pass
    ports = {"CROWDSAFE_KAFKA_PORT": str(port), "CROWDSAFE_KAFKA_CONTROLLER_PORT": str(controller)}
    state = installed.home / ".local" / "state" / "crowdsafe" / "kafka"
    try:
        up = installed.run("crowdsafe", "kafka", "up", "--no-topics", timeout=300, **ports)
        assert up.returncode == 0, up.stdout + up.stderr
        status = installed.run("crowdsafe", "kafka", "status", **ports)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.startswith(f"kafka: up (pid {_pid(state)}) at 127.0.0.1:{port}")
        assert f"data {state / 'data'}" in status.stdout

        (jars,) = (installed.home / ".cache" / "crowdsafe" / "kafka").glob("kafka-*")
        assert (jars / ".resolved").is_file() and any(jars.glob("kafka_2.13-*.jar"))
        for name in ("server.properties", "log4j2.xml", "data/meta.properties", "logs/server.log"):
            assert (state / name).is_file(), name

        down = installed.run("crowdsafe", "kafka", "down", **ports)
        assert down.returncode == 0, down.stderr
        assert installed.run("crowdsafe", "kafka", "status", **ports).returncode == 3
    finally:
        _stop(state)


def _pid(state: Path) -> int:
    return int((state / "broker.pid").read_text())


def _stop(state: Path) -> None:
    """Never leave the test's broker behind: SIGKILL its process group (it leads its own
    session) if ``kafka down`` did not run or failed."""
    try:
        pid = _pid(state)
    except (FileNotFoundError, ValueError):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
