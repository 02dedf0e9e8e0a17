"""The site file's ``[calendar]``: the country and region whose public holidays the ``holidays``
package knows, and what it does not know (make-up working days, extra days off, planned events,
the Spring Festival travel rush with its expected uplift)."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class CalendarError(ValueError):
    """A calendar file or option that cannot be used; the message says where and why."""


def load_calendar(
    path: Path | None = None, country: str | None = None, subdiv: str | None = None
) -> CalendarSettings:
    """Calendar settings from a TOML file (a ``[calendar]`` table, as in a site file, or its
    keys at the top level), with ``country``/``subdiv`` given on a command line taking
    precedence. Raises :class:`CalendarError` naming the file and the field."""
    data: dict = {}
    where = "calendar"
    if path is not None:
        where = str(path)
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CalendarError(f"{path}: {exc}") from None
        data = dict(raw.get("calendar", raw))
    if country is not None:
        data["country"] = country
    if subdiv is not None:
        data["subdiv"] = subdiv
    try:
        return CalendarSettings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "".join(f"{p}: " for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise CalendarError(f"{where}: {field}{msg}") from None
