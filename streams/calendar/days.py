"""A site's days: public holidays (the ``holidays`` package, for the site's country and region),
make-up working days, planned events with their expected uplift, as
:class:`detectors.anomaly.Day` for the anomaly detector and as a label for alerts.

Read per reading, so cheap: one lookup per local date and zone, and no date arithmetic at all
while readings stay within the same local day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from detectors.anomaly import ORDINARY_DAY, Day
from streams.config.calendar import CalendarSettings

SUNDAY, WEDNESDAY = 6, 2
# A make-up working day on a weekend is scored as a midweek day: which weekday it stands in for
# is not published, and midweek hours are the most typical working day.
WORKDAY_AS = WEDNESDAY


class SiteCalendar:
    """Days of one site, in its time zone.

    >>> cal = SiteCalendar(CalendarSettings(country="CN"), "Asia/Shanghai")
    >>> ms = lambda y, m, d: int(datetime(y, m, d, 12, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)
    >>> cal.day(ms(2026, 10, 1)).label, cal.day(ms(2026, 10, 1)).as_weekday
    ('National Day (public holiday)', 6)
    >>> cal.day(ms(2026, 10, 10)).label       # a Saturday worked to make up Golden Week
    'make-up working day'
    >>> cal.day(ms(2026, 11, 25)) == ORDINARY_DAY
    True
    """

    def __init__(self, settings: CalendarSettings, tz: str | tzinfo) -> None:
        self.settings = settings
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._public = _public_holidays(settings.country, settings.subdiv)
        self._span: tuple[int, int, date] | None = None  # the local day last asked about
        self._days: dict[tuple[date, str | None], Day] = {}

    def day(self, ts_ms: int | float, zone_id: str | None = None) -> Day:
        """The day at ``ts_ms`` (epoch ms) for ``zone_id`` (None: site-wide events only)."""
        span = self._span
        if span is None or not span[0] <= ts_ms < span[1]:
            span = self._span = self._local_day(ts_ms)
        key = (span[2], zone_id)
        found = self._days.get(key)
        if found is None:
            if len(self._days) > 4096:  # bounded: a few zones times the days of a replay
                self._days.clear()
            found = self._days[key] = self._resolve(span[2], zone_id)
        return found

    def holiday_dates(self, start: date, end: date) -> dict[date, str]:
        """Public holidays and declared days off between ``start`` and ``end`` (inclusive)."""
        out = {}
        d = start
        while d <= end:
            name = self._holiday_name(d)
            if name:
                out[d] = name
            d += timedelta(days=1)
        return out

    def _local_day(self, ts_ms: int | float) -> tuple[int, int, date]:
        local = datetime.fromtimestamp(ts_ms / 1000, self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = (midnight + timedelta(days=1)).replace(tzinfo=None)
        end = datetime.combine(nxt.date(), datetime.min.time(), self.tz)
        return int(midnight.timestamp() * 1000), int(end.timestamp() * 1000), local.date()

    def _holiday_name(self, d: date) -> str | None:
        if d in self.settings.holidays:
            return self.settings.holidays[d]
        if self._public is not None:
            return self._public.get(d)
        return None

    def _is_workday(self, d: date) -> bool:
        if d in self.settings.workdays:
            return True
        extra = getattr(self._public, "weekend_workdays", None)
        return bool(extra) and d in extra

    def _resolve(self, d: date, zone_id: str | None) -> Day:
        labels: list[str] = []
        as_weekday, holiday = None, False
        name = self._holiday_name(d)
        if name and not self._is_workday(d):
            as_weekday, holiday = SUNDAY, True
            labels.append(f"{name} (public holiday)")
        elif self._is_workday(d) and d.weekday() >= 5:
            as_weekday = WORKDAY_AS
            labels.append("make-up working day")
        uplift = 1.0
        for event in self.settings.events:
            if event.start <= d <= event.end and (not event.zones or zone_id in event.zones):
                uplift *= event.uplift
                labels.append(
                    f"{event.name} (expected x{event.uplift:g})"
                    if event.uplift != 1
                    else event.name
                )
        if not labels:
            return ORDINARY_DAY
        return Day(as_weekday, holiday, uplift, "; ".join(labels))


@lru_cache(maxsize=32)
def _public_holidays(country: str | None, subdiv: str | None):
    """The ``holidays`` package's calendar (years are filled in as they are asked for)."""
    if country is None:
        return None
    import holidays

    return holidays.country_holidays(country, subdiv=subdiv)
