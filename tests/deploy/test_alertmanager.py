"""deploy/alertmanager: amtool accepts the config and its routes, and a real Alertmanager receives
the zone-critical alert that a real Prometheus raises from a real worker during a surge."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
AMTOOL = shutil.which("amtool")
SURGE_ZONE = "entrance-east"

needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (apt-get install prometheus-alertmanager)"
)


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


@needs_amtool
def test_amtool_accepts_the_config():
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_amtool
@pytest.mark.parametrize(
    "labels, receiver",
    [
        (["alertname=CrowdsafeZoneDensityCritical", "severity=critical", "zone=z"], "duty-officer"),
        (["alertname=CrowdsafeWorkerDown", "severity=critical"], "duty-officer"),
        (["alertname=CrowdsafeZoneDensityWarning", "severity=warning", "zone=z"], "command-centre"),
    ],
)
def test_critical_alerts_route_to_the_duty_officer_the_rest_to_command_centre(labels, receiver):
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


@pytest.mark.kafka
def test_alertmanager_receives_the_zone_critical_alert(pipeline, alertmanager, prometheus):
    # Prometheus found the Alertmanager its config (the shipped one, ports replaced) names.
    found = prometheus.poll(
        lambda: prometheus.get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"],
        "active alertmanagers",
        timeout=30,
    )
    assert [a["url"] for a in found] == [f"{alertmanager.url}/api/v2/alerts"]
    assert alertmanager.alerts() == []

    pipeline.start_worker()
    pipeline.simulate_surge_until_now()

    # The rule fires once the surge zone has been critical for its "for" (30 s) and Prometheus
    # sends it on; nothing is rewritten for the test but the intervals.
    alerts = alertmanager.wait_for('alertname="CrowdsafeZoneDensityCritical"', timeout=90)
    assert {a["labels"]["zone"] for a in alerts} == {SURGE_ZONE}
    (alert,) = alerts
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["site"] == "guangzhou-station"  # prometheus.yml's external label
    assert alert["status"]["state"] == "active"
    assert [r["name"] for r in alert["receivers"]] == ["duty-officer"]
    assert alert["annotations"]["runbook"].endswith("#crowdsafezonedensitycritical")
    assert SURGE_ZONE in alert["annotations"]["summary"]

    # And amtool, the operator's client, sees the same alert.
    result = alertmanager.amtool(
        "alert", "query", "--output=json", "alertname=CrowdsafeZoneDensityCritical"
    )
    assert result.returncode == 0, result.stderr
    assert [a["labels"]["zone"] for a in json.loads(result.stdout)] == [SURGE_ZONE]
