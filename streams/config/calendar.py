"""The site file's ``[calendar]``: the country and region whose public holidays the ``holidays``
package knows, and what it does not know (make-up working days, extra days off, planned events,
the Spring Festival travel rush with its expected uplift)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Positive = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedEvent(_Strict):
    """Days on which a crowd is expected: a concert, a match, the travel rush (chunyun)."""

    name: str
    name_zh: str = ""
    start: date  # first day, local time
    end: date  # last day, inclusive
    uplift: Positive = 1.0  # the crowd expected relative to an ordinary day of its kind
    zones: list[str] = []  # empty: every zone of the site

    @model_validator(mode="after")
    def _ordered(self) -> PlannedEvent:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class CalendarSettings(_Strict):
    """Which days are not ordinary. ``country``/``subdiv`` as the ``holidays`` package spells
    them (``CN``; ``AU`` with ``VIC``); ``holidays``: extra days off, date to name;
    ``workdays``: extra working days on a weekend (the package knows China's published ones)."""

    country: str | None = None
    subdiv: str | None = None
    holidays: dict[date, str] = {}
    workdays: list[date] = []
    events: list[PlannedEvent] = []

    @field_validator("country")
    @classmethod
    def _known_country(cls, code: str | None) -> str | None:
        import holidays

        if code is not None and code not in holidays.list_supported_countries():
            raise ValueError(f"unknown country code {code!r} (the holidays package's, e.g. 'CN')")
        return code

    @model_validator(mode="after")
    def _known_subdiv(self) -> CalendarSettings:
        import holidays

        if self.subdiv is None:
            return self
        if self.country is None:
            raise ValueError("subdiv needs a country")
        known = holidays.list_supported_countries()[self.country]
        if self.subdiv not in known:
            raise ValueError(
                f"unknown subdiv {self.subdiv!r} of {self.country} (known: {', '.join(known)})"
            )
        return self
