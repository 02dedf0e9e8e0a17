"""What every alert kind provides, and the registry the processor, the sweep and the backtest
take their alert policy from.

A kind says what value it watches in a zone snapshot, when it is skipped (nothing known, so
nothing raises or clears), its thresholds from the site file, and its message. Hysteresis and
hold time are the site's, applied to every kind by :func:`make_alarm`: no copy of them anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from detectors.alerting import Alarm, Transition
from streams.config.site import Site, Zone
from streams.schema.payloads import ZoneState

# What a kind judges: the zone's record as published on crowd.zone-state (attributes, not keys).
Snapshot = ZoneState


@dataclass(frozen=True, slots=True)
class ZoneContext:
    """What a kind may know about a zone besides its snapshot."""

    zone: Zone
    configured_sources: frozenset[str]  # the zone's sources in the site file


class AlertKind:
    """One kind of alert. Subclasses set :attr:`name` and override :meth:`alarm`, :meth:`value`
    and :meth:`message`; :attr:`settings_model` (optional) validates the kind's own site-file
    table ``[defaults.alerts.<name>]``, overridden per zone by ``alerts.<name>``."""

    name: ClassVar[str]
    # Which incidents its alerts join (streams/incidents/): "crowd" (people at risk) or
    # "technical" (the system's own eyes failing), each routed by its own rules.
    category: ClassVar[str] = "crowd"
    settings_model: ClassVar[type[BaseModel] | None] = None

    def alarm(self, site: Site, zone: Zone) -> Alarm:
        raise NotImplementedError

    def value(self, snap: Snapshot, ctx: ZoneContext) -> float | None:
        """The watched value; ``None`` means "not breaching" unless :meth:`skipped`."""
        raise NotImplementedError

    def skipped(self, snap: Snapshot, ctx: ZoneContext) -> bool:
        """Nothing is known (blind, warming up): the episode neither raises nor clears."""
        return self.value(snap, ctx) is None

    def message(self, zone: Zone, t: Transition, snap: Snapshot) -> str:
        raise NotImplementedError

    def settings(self, site: Site, zone: Zone) -> BaseModel:
        """The kind's settings for ``zone``: its model's defaults, then the site's
        ``[defaults.alerts.<name>]``, then the zone's ``alerts.<name>``."""
        if self.settings_model is None:
            raise TypeError(f"alert kind '{self.name}' has no settings model")
        merged = {**site.defaults.alerts.get(self.name, {}), **zone.alerts.get(self.name, {})}
        try:
            return self.settings_model(**merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            # Blame the zone's own table if it sets the field, else the site's defaults.
            field = tuple(err["loc"])
            own = zone.alerts.get(self.name, {})
            if field and field[0] in own:
                loc = ("zones", site.zones.index(zone), "alerts", self.name, *field)
            else:
                loc = ("defaults", "alerts", self.name, *field)
            raise site.error(loc, err["msg"]) from exc


def make_alarm(site: Site, zone: Zone, warning: float, critical: float, **kw: Any) -> Alarm:
    """An alarm with the site's hysteresis and the zone's (or the site's) hold time."""
    hold_s = zone.hold_s if zone.hold_s is not None else site.defaults.hold_s
    return Alarm(warning, critical, site.defaults.hysteresis, hold_s, **kw)


def head(zone: Zone, t: Transition) -> str:
    """``Zone name: WARNING raised`` / ``Zone name: cleared``: every message starts so."""
    if t.state == "cleared":
        return f"{zone.name}: cleared"
    return f"{zone.name}: {t.severity.upper()} {t.state}"


_REGISTERED: dict[str, AlertKind] = {}


def register(kind: AlertKind) -> AlertKind:
    """Add a kind to the registry (after the built-in ones); its name must be new."""
    if kind.name in _REGISTERED:
        raise ValueError(f"alert kind '{kind.name}' is already registered")
    _REGISTERED[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


@contextmanager
def registered(kind: AlertKind) -> Iterator[AlertKind]:
    """Register ``kind`` for the duration of a ``with`` block (tests, experiments)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def registry() -> dict[str, AlertKind]:
    """Every registered kind by name, in evaluation order."""
    return dict(_REGISTERED)


def check_site(site: Site, kinds: Iterable[AlertKind]) -> None:
    """Every ``alerts.<name>`` table of the site names a known kind and validates."""
    names = {k.name for k in kinds}
    tables = [(("defaults", "alerts"), site.defaults.alerts)] + [
        (("zones", i, "alerts"), z.alerts) for i, z in enumerate(site.zones)
    ]
    for where, alerts in tables:
        for name in alerts:
            if name not in names:
                known = ", ".join(sorted(names))
                raise site.error((*where, name), f"no such alert kind (known: {known})")
    for kind in kinds:
        if kind.settings_model is not None:
            for zone in site.zones:
                kind.settings(site, zone)
