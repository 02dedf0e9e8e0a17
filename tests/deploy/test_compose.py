"""deploy/compose.yaml as Debian's docker-compose resolves it (`docker-compose config` needs no
daemon, builds and pulls nothing), and deploy/Dockerfile with its .dockerignore."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streams.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = shutil.which("docker-compose")
CROWDSAFE = {"topics": "kafka", "worker": "worker", "simulator": "simulate", "centre": "centre"}


@pytest.fixture(scope="module")
def config() -> dict:
    if COMPOSE is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose; CI has it)")
    # Only PATH: a CROWDSAFE_TOKEN or .env of whoever runs the tests must not leak in.
    result = subprocess.run(
        [COMPOSE, "-f", str(DEPLOY / "compose.yaml"), "config"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":") if isinstance(volume, str) else volume.values()
        if source.startswith("/"):
            out[target] = Path(source)
    return out


def container_ports(service: dict) -> list[int]:
    """The container ports a service publishes (`[ip:]host:container[/protocol]`)."""
    return [int(str(p).split("/")[0].rsplit(":", 1)[-1]) for p in service.get("ports", [])]


def test_every_part_of_the_stack_is_a_service(config):
    assert set(config["services"]) == {
        "kafka", "topics", "worker", "simulator", "centre", "prometheus", "alertmanager", "grafana",
    }  # fmt: skip


def test_kafka_is_the_official_image_in_kraft_mode(config):
    kafka = config["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"] == "apache/kafka:4.1.0"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # `crowdsafe kafka topics` makes them
    assert any(m.startswith("kafka-data:") for m in kafka["volumes"])


@pytest.mark.parametrize("name", CROWDSAFE)
def test_crowdsafe_services_run_one_image_with_a_real_command(
    config, name, crowdsafe_parser, setting_names
):
    service = config["services"][name]
    assert service["image"].startswith("crowdsafe:")
    assert Path(service["build"]["context"]) == ROOT
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    # The command is a real sub-command of the image's entrypoint, `crowdsafe`.
    command = service["command"]
    assert command[0] == CROWDSAFE[name]
    crowdsafe_parser.parse_args(command)
    assert set(service["environment"]) <= setting_names
    # It reaches the broker the kafka service advertises.
    advertised = config["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{service['environment']['KAFKA_BOOTSTRAP']}" in advertised
    assert service["environment"]["KAFKA_BOOTSTRAP"].startswith("kafka:")


def test_topics_come_first_and_workers_scale(config):
    services = config["services"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "simulator", "centre"):
        assert services[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    worker = services["worker"]
    # `--scale worker=N` fails on a fixed host port or container name.
    assert "ports" not in worker and "container_name" not in worker
    assert int(worker["stop_grace_period"].rstrip("s")) > Settings().stop_timeout_s


def test_health_checks_ask_the_ports_the_processes_listen_on(config):
    defaults = Settings()
    for name, port in (("worker", defaults.web_port), ("centre", defaults.centre_port)):
        test = " ".join(config["services"][name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/health" in test, name
    assert container_ports(config["services"]["centre"]) == [defaults.centre_port]


def test_no_token_unless_given(config):
    assert config["services"]["centre"]["environment"]["CROWDSAFE_TOKEN"] == ""


def test_prometheus_scrapes_every_worker_by_dns(config):
    services = config["services"]
    prometheus = services["prometheus"]
    flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    inside = Path(flag.split("=", 1)[1])
    host_dir = mounts(prometheus)[str(inside.parent)]
    assert host_dir == DEPLOY / "prometheus"
    scrape = yaml.safe_load((host_dir / inside.name).read_text())
    (rules,) = scrape["rule_files"]
    assert (host_dir / rules).is_file()
    jobs = {j["job_name"]: j for j in scrape["scrape_configs"]}
    # job "crowdsafe": what the rules (up{job="crowdsafe"}) and the dashboard expect
    (dns,) = jobs["crowdsafe"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["port"] == Settings().web_port
    centre = jobs["crowdsafe-centre"]["static_configs"][0]["targets"]
    assert centre == [f"centre:{Settings().centre_port}"]
    (manager,) = scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert manager.split(":")[0] in services
    alertmanager = services["alertmanager"]
    assert int(manager.split(":")[1]) in container_ports(alertmanager)
    assert mounts(alertmanager)["/etc/alertmanager"] == DEPLOY / "alertmanager"


def test_grafana_gets_the_provisioning_and_the_dashboard_where_it_looks(config):
    grafana = config["services"]["grafana"]
    bound = mounts(grafana)
    dashboards = bound["/etc/grafana/provisioning/dashboards"]
    assert dashboards == DEPLOY / "grafana" / "provisioning" / "dashboards"
    provider = yaml.safe_load((dashboards / "crowdsafe.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    files = {t: s for t, s in bound.items() if Path(t).parent == Path(folder)}
    assert list(files.values()) == [DEPLOY / "grafana" / "crowdsafe-dashboard.json"]
    # The datasource: the same uid as the shipped one, at the prometheus service.
    datasources = bound["/etc/grafana/provisioning/datasources"]
    (mine,) = yaml.safe_load((datasources / "crowdsafe.yml").read_text())["datasources"]
    shipped = DEPLOY / "grafana" / "provisioning" / "datasources" / "crowdsafe.yml"
    (theirs,) = yaml.safe_load(shipped.read_text())["datasources"]
    assert mine["uid"] == theirs["uid"] and mine["type"] == theirs["type"] == "prometheus"
    url = urlsplit(mine["url"])
    assert url.hostname == "prometheus" and url.port == 9090


def test_dockerfile_installs_the_package_and_runs_crowdsafe_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert re.search(r'^ENTRYPOINT \["crowdsafe"\]$', text, re.M) and "crowdsafe" in scripts
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim"] * 2
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert user.split(":")[0] not in ("root", "0")
    # The web servers listen beyond the container's loopback, or nothing reaches them.
    assert "CROWDSAFE_WEB_HOST=0.0.0.0" in text and "CROWDSAFE_CENTRE_HOST=0.0.0.0" in text


def test_dockerignore_lets_in_only_what_the_dockerfile_copies():
    text = (DEPLOY / "Dockerfile").read_text()
    copied = set()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        copied |= {p.strip("./") for p in shlex.split(line)[:-1]}
    patterns = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert patterns[0] == "*"  # everything out (.venv, .state, bench-results, jars) ...
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == copied  # ... but what the image is built from
    assert all((ROOT / p).exists() for p in copied)
