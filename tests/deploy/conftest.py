"""A real Prometheus and a real Alertmanager on free loopback ports, run from the shipped configs
in ``deploy/`` (ports, intervals and paths replaced) and stopped by pid, also when a test fails.

``prometheus`` scrapes the test's worker (``pipeline``); it sends its alerts to the test's
``alertmanager`` when the test asks for one too, else to a free port where nothing listens.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from streams.ops import procs
from streams.testing import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager")  # Debian's name for the binary
AMTOOL = shutil.which("amtool")


class Server:
    """A server's HTTP API on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict | list:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as r:  # noqa: S310
            return json.load(r)

    def poll(self, fetch, what: str, timeout: float) -> list:
        """``fetch()`` again every half second until it returns something non-empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := fetch():
                return result
            time.sleep(0.5)
        raise TimeoutError(f"{what}: nothing after {timeout}s")


class Prometheus(Server):
    def query(self, promql: str) -> list[dict]:
        return self.get("/api/v1/query", query=promql)["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 60) -> list[dict]:
        try:
            return self.poll(lambda: self.query(promql), promql, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; targets: {self.get('/api/v1/targets')}") from None


class Alertmanager(Server):
    def alerts(self, *matchers: str) -> list[dict]:
        """The alerts it holds (API v2), e.g. ``alerts('alertname="X"')``."""
        query = urllib.parse.urlencode([("filter", m) for m in matchers])
        return self.get(f"/api/v2/alerts?{query}")

    def wait_for(self, *matchers: str, timeout: float = 60) -> list[dict]:
        return self.poll(lambda: self.alerts(*matchers), f"alerts {matchers}", timeout)

    def amtool(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [AMTOOL, *args, f"--alertmanager.url={self.url}"],
            capture_output=True,
            text=True,
            timeout=30,
        )


@contextmanager
def serve(argv: Sequence[str], server: Server, log_path: Path) -> Iterator[Server]:
    """Run ``argv`` until the block ends, once its ``/-/ready`` answers."""
    log = open(log_path, "w")  # noqa: SIM115 (lives with the process)
    proc = procs.spawn(argv, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{server.url}/-/ready", timeout=1)  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield server
    finally:
        procs.stop(proc)
        log.close()


def prometheus_config(worker_port: int, alertmanager_port: int) -> str:
    """``deploy/prometheus/prometheus.yml`` for a test: its worker and Alertmanager ports,
    a 1 s scrape and evaluation, and the rules file by absolute path."""
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    swaps = {
        '"127.0.0.1:6067"': f'"127.0.0.1:{worker_port}"',
        '"127.0.0.1:9094"': f'"127.0.0.1:{alertmanager_port}"',
        "- alerts.yml": f"- {DEPLOY / 'prometheus' / 'alerts.yml'}",
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"{old} not once in prometheus.yml"
        text = text.replace(old, new)
    intervals = r"^(\s*(?:scrape_interval|scrape_timeout|evaluation_interval):)\s*\S+"
    text, n = re.subn(intervals, r"\1 1s", text, flags=re.MULTILINE)
    assert n == 3, "prometheus.yml: scrape_interval, scrape_timeout, evaluation_interval"
    return text


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """``deploy/alertmanager/alertmanager.yml`` as shipped, single node, own storage."""
    if ALERTMANAGER is None or AMTOOL is None:
        pytest.skip("alertmanager not installed (apt-get install prometheus-alertmanager)")
    server = Alertmanager(free_port())
    argv = [
        ALERTMANAGER,
        f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{server.port}",
        "--cluster.listen-address=",  # no gossip port (its default is 0.0.0.0:9094)
    ]
    with serve(argv, server, tmp_path / "alertmanager.log"):
        yield server


@pytest.fixture
def prometheus(request, pipeline, tmp_path: Path) -> Iterator[Prometheus]:
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    if "alertmanager" in request.fixturenames:
        alertmanager_port = request.getfixturevalue("alertmanager").port
    else:
        alertmanager_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(pipeline.web_port, alertmanager_port))
    server = Prometheus(free_port())
    argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{server.port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with serve(argv, server, tmp_path / "prometheus.log"):
        yield server


@pytest.fixture(scope="session")
def crowdsafe_parser() -> argparse.ArgumentParser:
    """The `crowdsafe` parser refusing abbreviated options (`--scenari` would pass otherwise):
    what a container's command must parse with."""
    from streams.cli import build_parser

    parsers = [build_parser()]
    for parser in parsers:
        parser.allow_abbrev = False
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return parsers[0]


@pytest.fixture(scope="session")
def setting_names() -> set[str]:
    """Every environment variable crowdsafe's settings read: a deployment file setting any
    other CROWDSAFE_ or KAFKA_ name has a typo that would be silently ignored."""
    from streams.config.settings import Settings

    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names |= set(alias.choices) if alias else {f"CROWDSAFE_{name.upper()}"}
    return names
