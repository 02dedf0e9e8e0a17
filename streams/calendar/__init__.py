"""What kind of day a moment is at a site: :class:`SiteCalendar`."""

from streams.calendar.days import SiteCalendar

__all__ = ["SiteCalendar"]
