"""The site calendar: holidays from the holidays package, make-up working days, declared events,
and what the anomaly detector and the alerts make of them."""

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detectors.anomaly import ORDINARY_DAY
from streams.calendar import SiteCalendar
from streams.config.calendar import CalendarSettings, PlannedEvent
from streams.config.paths import bundled_site
from streams.config.site import SiteError, load_site

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, h: int = 12, tz: ZoneInfo = SHANGHAI) -> int:
    return int(datetime(y, m, d, h, tzinfo=tz).timestamp() * 1000)


def test_chinese_holidays_make_up_days_and_the_travel_rush_from_the_shipped_site():
    site = load_site(bundled_site())
    cal = SiteCalendar(site.calendar, site.site.timezone)
    spring = cal.day(at(2026, 2, 17))  # Spring Festival, inside the declared chunyun
    assert spring.holiday and spring.as_weekday == 6
    assert spring.uplift == pytest.approx(1.3)
    assert "public holiday" in spring.label and "travel rush" in spring.label
    workday = cal.day(at(2026, 2, 14))  # a Saturday worked before the holiday
    assert (workday.holiday, workday.as_weekday) == (False, 2)
    assert cal.day(at(2026, 2, 12)).uplift == pytest.approx(1.3)  # rush, an ordinary Thursday
    assert cal.day(at(2026, 11, 25)) == ORDINARY_DAY
    # Local days: 23:30 on National Day's eve is not a holiday; 00:30 the next day is.
    assert not cal.day(at(2026, 9, 30, 23) + 30 * 60_000).holiday
    assert cal.day(at(2026, 10, 1, 0) + 30 * 60_000).holiday


def test_declared_days_and_zone_events_override_and_add_to_the_package():
    settings = CalendarSettings(
        country="AU",
        subdiv="VIC",
        holidays={date(2014, 11, 3): "Cup eve (declared)"},
        workdays=[date(2014, 11, 8)],
        events=[
            PlannedEvent(
                name="White Night",
                start=date(2014, 2, 22),
                end=date(2014, 2, 22),
                uplift=2.0,
                zones=["mall"],
            )
        ],  # fmt: skip
    )
    melbourne = ZoneInfo("Australia/Melbourne")
    cal = SiteCalendar(settings, melbourne)
    assert cal.day(at(2014, 11, 4, tz=melbourne)).label == "Melbourne Cup Day (public holiday)"
    assert cal.day(at(2014, 11, 3, tz=melbourne)).holiday
    assert cal.day(at(2014, 11, 8, tz=melbourne)).as_weekday == 2
    assert cal.day(at(2014, 2, 22, tz=melbourne), "mall").uplift == 2.0
    assert cal.day(at(2014, 2, 22, tz=melbourne), "bridge") == ORDINARY_DAY
    days = cal.holiday_dates(date(2014, 12, 24), date(2014, 12, 27))
    assert sorted(days) == [date(2014, 12, 25), date(2014, 12, 26)]


def test_bad_calendar_settings_name_the_field(tmp_path: Path):
    text = bundled_site().read_text()
    for old, new, match in (
        ('country = "CN"', 'country = "XX"', r"calendar.*country.*unknown country code 'XX'"),
        ('country = "CN"', 'country = "CN"\nsubdiv = "ZZ"', r"unknown subdiv 'ZZ' of CN"),
        ("end = 2026-03-13", "end = 2026-01-13", r"end \(2026-01-13\) is before start"),
        ("uplift = 1.3\n", 'uplift = 1.3\nzones = ["atlantis"]\n', r"unknown zone 'atlantis'"),
    ):
        assert old in text
        path = tmp_path / "site.toml"
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(SiteError, match=match):
            load_site(path)
