"""The alert-kind registry: every kind's policy from one module and the site file; a new kind is
one module plus its settings."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
from pydantic import BaseModel, Field

from detectors.alerting import Alarm, Transition
from streams.config.paths import bundled_site
from streams.config.site import SiteError, Zone, load_site
from streams.offline.backtest import SeriesPolicy
from streams.schema.payloads import Alert, Reading
from streams.zone import alerts
from streams.zone.alerts import AlertKind, make_alarm
from streams.zone.processor import ZoneProcessor

SITE_FILE = bundled_site()
T0 = 1_764_000_000_000


def site_with(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "site.toml"
    text = SITE_FILE.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_built_in_kinds_are_registered_in_order():
    assert list(alerts.registry()) == [
        "density",
        "anomaly",
        "forecast",
        "source-offline",
        "source-fault",
    ]


def test_anomaly_forecast_and_hold_can_be_set_per_zone(tmp_path):
    path = site_with(
        tmp_path,
        "area_m2 = 240",
        "area_m2 = 240\nhold_s = 30\nanomaly = { warning = 0.8, critical = 0.95 }\n"
        "forecast = { warning_min = 20, critical_min = 8 }",
    )
    site = load_site(path)
    stairs, square = site.zone("metro-stairs"), site.zone("main-square")
    kinds = alerts.registry()
    assert kinds["anomaly"].alarm(site, stairs).warning == 0.8
    assert kinds["anomaly"].alarm(site, square).warning == 0.9
    assert kinds["forecast"].alarm(site, stairs).warning == 20
    assert kinds["forecast"].alarm(site, stairs).critical == 8
    assert kinds["density"].alarm(site, stairs).hold_s == 30
    assert kinds["density"].alarm(site, square).hold_s == 120


def test_backtest_takes_hysteresis_and_hold_from_the_site_file(tmp_path):
    site = load_site(site_with(tmp_path, "hold_s = 120", "hold_s = 45"))
    policy = SeriesPolicy.for_series(site, "queuing", 500.0)
    assert [k.name for k, _ in policy.alarms] == ["density", "anomaly", "forecast"]
    assert {a.hold_s for _, a in policy.alarms} == {45}
    assert (policy.warning, policy.critical) == (4.0, 4.7)  # the site's queuing defaults


class PressureSettings(BaseModel):
    warning: float = Field(0.02, gt=0)
    critical: float = Field(0.05, gt=0)


class Crowding(AlertKind):
    """A toy kind: people per fresh source, for the registry test."""

    name = "crowding"
    settings_model = PressureSettings

    def alarm(self, site, zone: Zone) -> Alarm:
        s = self.settings(site, zone)
        return make_alarm(site, zone, s.warning, s.critical)

    def value(self, snap, ctx):
        fresh = len(snap.sources.fresh)
        return None if snap.occupancy is None or not fresh else snap.occupancy / fresh

    def message(self, zone: Zone, t: Transition, snap) -> str:
        return f"{zone.name}: {t.severity} {t.state}, {t.value:.0f} people per source"


def test_a_new_kind_is_one_class_plus_its_site_settings(tmp_path):
    path = site_with(
        tmp_path,
        "area_m2 = 240",
        "area_m2 = 240\nalerts = { crowding = { warning = 100, critical = 400 } }",
    )
    with alerts.registered(Crowding()):
        site = load_site(path)
        processor = ZoneProcessor(site)
        assert "crowding" in [k.name for k in processor.kinds]
        # metro-stairs has its own thresholds; other zones the kind's defaults (0.02 / 0.05).
        stairs = Reading(source_id="cam-metro-stairs", kind="camera", zone_id="metro-stairs",
                         ts=T0, seq=1, count=150)  # fmt: skip
        out = processor.apply("metro-stairs", None, [stairs])
        crowding = [a for a in out.alerts if a.kind == "crowding"]
        assert [(a.severity, a.state) for a in crowding] == [("warning", "raised")]
        assert crowding[0].alert_id == f"metro-stairs/crowding/{T0}"
        assert crowding[0].message.endswith("people per source")
        # A kind registered later is publishable: its alert fits the published Alert schema.
        published = msgspec.json.encode(crowding[0])
        assert msgspec.json.decode(published, type=Alert) == crowding[0]
    assert "crowding" not in alerts.registry()
    # Without the kind, its settings table is a clear error naming the table.
    where = r"site.toml:\d+: zone 'metro-stairs' .*'alerts.crowding'"
    with pytest.raises(SiteError, match=where + ": no such alert kind"):
        ZoneProcessor(load_site(path))


def test_a_kinds_bad_setting_names_the_zone_and_field(tmp_path):
    path = site_with(
        tmp_path, "area_m2 = 240", "area_m2 = 240\nalerts = { crowding = { warning = -1 } }"
    )
    where = r"site.toml:(\d+): zone 'metro-stairs' .*'alerts.crowding.warning'"
    with alerts.registered(Crowding()), pytest.raises(SiteError, match=where) as err:
        ZoneProcessor(load_site(path))
    line = int(re.search(where, str(err.value)).group(1))
    assert path.read_text().splitlines()[line - 1].startswith("alerts = { crowding")
