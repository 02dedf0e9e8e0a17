"""Synthetic sites: deterministic, valid at city scale, written by ``crowdsafe site synth``."""

from __future__ import annotations

import tomllib

from streams.cli import main
from streams.config.site import load_site
from streams.config.synthetic import synthetic_site, synthetic_toml, write_synthetic_site


def test_ten_thousand_zones_load_and_validate_from_the_written_file(tmp_path):
    site = write_synthetic_site(tmp_path / "city.toml", 10_000, seed=4)

    assert len(site.zones) == 10_000 and len(site.zone_by_id) == 10_000
    kinds = {z.kind for z in site.zones}
    assert kinds == {"walkway", "queuing", "stairway"}
    # Every zone has a camera; about half a gate, a fifth a sensor.
    by_zone = site.sources_by_zone
    assert all(any(s.kind == "camera" for s in by_zone[z.id]) for z in site.zones)
    gates = sum(s.kind == "gate" for s in site.sources)
    sensors = sum(s.kind == "sensor" for s in site.sources)
    assert 4_500 < gates < 5_500 and 1_500 < sensors < 2_500
    # Laid on a grid: no two zones share a south-west corner, and every area fits its cell.
    corners = {tuple(z.polygon[0]) for z in site.zones}
    assert len(corners) == 10_000
    assert all(0 < z.area_m2 < 55.7 * 51.2 for z in site.zones)


def test_one_seed_one_site():
    assert synthetic_toml(50, seed=1) == synthetic_toml(50, seed=1)
    assert synthetic_toml(50, seed=1) != synthetic_toml(50, seed=2)
    assert tomllib.loads(synthetic_toml(5, seed=1))["zones"][0]["id"] == "z000000"


def test_sources_by_zone_matches_each_sources_zones():
    site = synthetic_site(200, seed=5)
    for zone in site.zones:
        want = [s.id for s in site.sources if zone.id in s.zones]
        assert [s.id for s in site.sources_by_zone[zone.id]] == want


def test_site_synth_command_writes_a_site_that_loads(tmp_path, capsys):
    out = tmp_path / "sites" / "synthetic.toml"
    assert main(["site", "synth", "--zones", "120", "--seed", "9", "--out", str(out)]) == 0
    assert "120 zones" in capsys.readouterr().out
    assert len(load_site(out).zones) == 120
    assert main(["site", "synth", "--zones", "0", "--out", str(out)]) == 2
