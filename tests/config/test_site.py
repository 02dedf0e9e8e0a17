"""Site files: the shipped site loads; bad files name the file, line, item and field."""

from pathlib import Path

import pytest

from streams.config.paths import bundled_site
from streams.config.site import SiteError, load_site

SITE = bundled_site()


def test_guangzhou_site_loads_with_every_source_on_a_known_zone():
    site = load_site(SITE)
    assert {"main-square", "ticket-hall", "metro-stairs"} <= set(site.zone_by_id)
    assert all(z in site.zone_by_id for s in site.sources for z in s.zones)
    assert site.thresholds(site.zone("metro-stairs")).critical == pytest.approx(2.7)


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = SITE.read_text()
    assert old in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def test_negative_area_names_line_zone_and_field(tmp_path):
    path = broken(tmp_path, "area_m2 = 9000", "area_m2 = -9000")
    with pytest.raises(SiteError) as err:
        load_site(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line_of(path, 'area_m2 = -9000')}:")
    assert "zone 'east-plaza'" in msg and "'area_m2'" in msg


def test_source_on_unknown_zone_is_named(tmp_path):
    path = broken(tmp_path, 'zones = ["underpass"]', 'zones = ["underpas"]')
    with pytest.raises(
        SiteError, match=r"source 'cam-underpass' .*'zones': unknown zone 'underpas'"
    ):
        load_site(path)


def test_duplicate_zone_id_and_unknown_field(tmp_path):
    path = broken(tmp_path, 'id = "west-plaza"', 'id = "east-plaza"')
    with pytest.raises(SiteError, match="duplicate id 'east-plaza'"):
        load_site(path)
    path = broken(tmp_path, "area_m2 = 600", "area_m2 = 600\ncolour = 'red'")
    with pytest.raises(SiteError, match=r":\d+: zone 'entrance-east' .*'colour'"):
        load_site(path)


def test_inverted_thresholds_and_bad_toml(tmp_path):
    path = broken(tmp_path, "critical = 3.0", "critical = 1.0")
    with pytest.raises(SiteError, match="critical .* must be above warning"):
        load_site(path)
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\n")
    with pytest.raises(SiteError, match="not valid TOML.*line 1"):
        load_site(bad)
