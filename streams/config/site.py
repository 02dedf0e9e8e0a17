"""The site model: zones, areas, thresholds and the sources that feed them, from a TOML file.

Loading validates everything and fails with :class:`SiteError`, which names the file, the line,
the zone or source and the field at fault.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from detectors.los import ZoneKind
from detectors.vision.config import CameraConfig
from streams.config.calendar import CalendarSettings
from streams.config.incidents import Escalation, IncidentSettings, Route, Rule, check_routing

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Positive = Annotated[float, Field(gt=0)]
AlertSetting = float | bool | str
# WGS84 (latitude, longitude) in degrees, as CAP 1.2 areas take them.
LatLon = tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]]


class SiteError(ValueError):
    """A site file that cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Density thresholds in persons/m² (defaults per kind: README, "Thresholds")."""

    warning: Positive
    critical: Positive

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.critical <= self.warning:
            raise ValueError(f"critical ({self.critical}) must be above warning ({self.warning})")
        return self


class AnomalyThresholds(_Strict):
    """Anomaly score alert: score in [0, 1] held above ``warning`` for ``min_duration_s``."""

    warning: Annotated[float, Field(gt=0, le=1)] = 0.9
    critical: Annotated[float, Field(gt=0, le=1)] = 0.99
    min_duration_s: Annotated[float, Field(ge=0)] = 60.0


class ForecastThresholds(_Strict):
    """Forecast alert: critical density predicted within these many minutes, for at least
    ``min_duration_s`` (a forecast that flickers under the line for a reading or two is a
    crowd's wander, not a build-up: 60 s halve the false alerts of ``crowdsafe evaluate``)."""

    warning_min: Positive = 15.0
    critical_min: Positive = 5.0
    min_duration_s: Annotated[float, Field(ge=0)] = 60.0


class Defaults(_Strict):
    stale_after_s: Positive = 60.0
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.1
    hold_s: Annotated[float, Field(ge=0)] = 120.0
    thresholds: dict[ZoneKind, Thresholds]
    anomaly: AnomalyThresholds = AnomalyThresholds()
    forecast: ForecastThresholds = ForecastThresholds()
    # Settings of further alert kinds (streams/zone/alerts/), validated by the kind's own model.
    alerts: dict[Id, dict[str, AlertSetting]] = {}


class Zone(_Strict):
    id: Id
    name: str
    name_zh: str = ""  # the zone's name in Chinese (the command centre's other language)
    # What staff do when this zone has an incident (shown with it on the command centre).
    response_plan: str = ""
    response_plan_zh: str = ""
    kind: ZoneKind
    area_m2: Positive
    warning: Positive | None = None
    critical: Positive | None = None
    hold_s: Annotated[float, Field(ge=0)] | None = None
    anomaly: AnomalyThresholds | None = None
    forecast: ForecastThresholds | None = None
    alerts: dict[Id, dict[str, AlertSetting]] = {}  # per-zone settings of further alert kinds
    # The zone's outline on the map, (lat, lon) pairs (CAP <polygon>; the command-centre plan).
    polygon: Annotated[list[LatLon], Field(min_length=3)] | None = None


class Source(_Strict):
    id: Id
    kind: Literal["camera", "gate", "sensor"]
    zones: Annotated[list[Id], Field(min_length=1)]
    name: str = ""
    # Fraction of each zone's area a camera sees: its count is divided by this.
    coverage: (
        Annotated[float, Field(gt=0, le=1)] | dict[Id, Annotated[float, Field(gt=0, le=1)]]
    ) = 1.0
    # A sensor's count is multiplied by this (e.g. devices per person).
    scale: Positive = 1.0
    weight: Positive = 1.0
    # Its expected reporting interval, as the silence after which it is stale (default: the
    # site's stale_after_s), and how far ahead of the wall clock its clock may run.
    stale_after_s: Positive | None = None
    max_clock_skew_s: Annotated[float, Field(ge=0)] | None = None
    camera: CameraConfig | None = None  # how an edge camera counts (docs/vision.md)

    def coverage_of(self, zone_id: str) -> float:
        if isinstance(self.coverage, dict):
            return self.coverage.get(zone_id, 1.0)
        return self.coverage


class SiteInfo(_Strict):
    id: Id
    name: str
    name_zh: str = ""
    timezone: str = "UTC"
    language: Literal["zh", "en"] = "en"  # the command centre's default language

    @model_validator(mode="after")
    def _known_timezone(self) -> SiteInfo:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{self.timezone}'") from exc
        return self


class Site(_Strict):
    # The file the site was read from, so that checks made after loading (e.g. an alert kind's
    # settings) still name the file and line. Only its path: the file is read again for such
    # an error (rare, at start-up), where keeping its text and parsed data held ~300 MB for
    # 100,000 zones.
    _origin: Path | None = PrivateAttr(default=None)

    site: SiteInfo
    defaults: Defaults
    zones: Annotated[list[Zone], Field(min_length=1)]
    sources: list[Source] = []
    # Who acts on alerts (streams/config/incidents.py, README "Incidents").
    escalation: Escalation = Escalation()
    routes: list[Route] = []
    routing: list[Rule] = []
    incidents: IncidentSettings = IncidentSettings()
    calendar: CalendarSettings = CalendarSettings()  # holidays, events (streams/calendar)

    @model_validator(mode="after")
    def _consistent(self) -> Site:
        _unique("zones", [z.id for z in self.zones])
        _unique("sources", [s.id for s in self.sources])
        zone_ids = {z.id for z in self.zones}
        for i, source in enumerate(self.sources):
            for zone_id in source.zones:
                if zone_id not in zone_ids:
                    raise _FieldError(("sources", i, "zones"), f"unknown zone '{zone_id}'")
            if source.camera is not None and source.kind != "camera":
                raise _FieldError(("sources", i, "camera"), f"a {source.kind} has no camera table")
            extra = set(source.camera.polygons) - set(source.zones) if source.camera else set()
            if extra:
                raise _FieldError(
                    ("sources", i, "camera", "polygons"),
                    f"polygons for zones not in the source's zones: {sorted(extra)}",
                )
        problem = check_routing(self.routes, self.routing, self.escalation)
        if problem:
            raise _FieldError(*problem)
        for i, rule in enumerate(self.routing):
            unknown = [z for z in rule.zones if z not in zone_ids]
            if unknown:
                raise _FieldError(("routing", i, "zones"), f"unknown zone '{unknown[0]}'")
        for i, event in enumerate(self.calendar.events):
            unknown = [z for z in event.zones if z not in zone_ids]
            if unknown:
                raise _FieldError(
                    ("calendar", "events", i, "zones"), f"unknown zone '{unknown[0]}'"
                )
        for i, zone in enumerate(self.zones):
            if zone.kind not in self.defaults.thresholds and zone.warning is None:
                raise _FieldError(("zones", i, "warning"), f"no thresholds for kind '{zone.kind}'")
            t = self.thresholds(zone)
            if t.critical <= t.warning:
                raise _FieldError(
                    ("zones", i, "critical"),
                    f"critical ({t.critical}) must be above warning ({t.warning})",
                )
        return self

    @cached_property
    def zone_by_id(self) -> dict[str, Zone]:
        return {z.id: z for z in self.zones}

    @cached_property
    def source_by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}

    @cached_property
    def sources_by_zone(self) -> dict[str, list[Source]]:
        """Each zone's sources, in file order: built once, so per-zone set-up stays linear in
        the site's size (a scan of every source per zone took hours at 100,000 zones)."""
        out: dict[str, list[Source]] = {z.id: [] for z in self.zones}
        for source in self.sources:
            for zone_id in source.zones:
                out[zone_id].append(source)
        return out

    def error(self, loc: tuple[str | int, ...], msg: str) -> SiteError:
        """A :class:`SiteError` for ``loc`` (e.g. ``("zones", 3, "alerts", "x", "warning")``),
        naming the file and line when the site was loaded from one."""
        where = f"{'.'.join(str(p) for p in loc)}: {msg}"
        if self._origin is None:
            return SiteError(where)
        try:
            text = self._origin.read_text()
            data = tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError):  # changed since: name the file only
            return SiteError(f"{self._origin}: {where}")
        return SiteError(_describe(self._origin, text, data, loc, msg))

    def zone(self, zone_id: str) -> Zone:
        return self.zone_by_id[zone_id]

    def source(self, source_id: str) -> Source:
        return self.source_by_id[source_id]

    def thresholds(self, zone: Zone) -> Thresholds:
        base = self.defaults.thresholds.get(zone.kind)
        return Thresholds(
            warning=zone.warning if zone.warning is not None else base.warning,
            critical=zone.critical if zone.critical is not None else base.critical,
        )


class _FieldError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def _unique(table: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, id_ in enumerate(ids):
        if id_ in seen:
            raise _FieldError((table, i, "id"), f"duplicate id '{id_}'")
        seen.add(id_)


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; raise :class:`SiteError` naming file, line and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SiteError(f"{path}: cannot read site file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteError(f"{path}: not valid TOML: {exc}") from exc
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc, msg = tuple(err["loc"]), err["msg"]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, _FieldError):
            loc, msg = cause.loc, cause.msg
        raise SiteError(_describe(path, text, data, loc, msg)) from exc
    site = _with_paths_relative_to(site, path.resolve().parent)
    site._origin = path
    return site


def _with_paths_relative_to(site: Site, base: Path) -> Site:
    """Camera model and calibration files are named relative to the site file."""
    sources = [
        s.model_copy(update={"camera": s.camera.resolve_paths(base)}) if s.camera else s
        for s in site.sources
    ]
    return site.model_copy(update={"sources": sources})


def _describe(path: Path, text: str, data: dict, loc: tuple, msg: str) -> str:
    line = _line_of(text, loc)
    where = f"{path}:{line}" if line else str(path)
    what = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in ("zones", "sources"):
        items = data.get(loc[0], [])
        item_id = items[loc[1]].get("id", "?") if loc[1] < len(items) else "?"
        singular = loc[0][:-1]
        field = ".".join(str(p) for p in loc[2:]) or "(table)"
        what = f"{singular} '{item_id}' (#{loc[1] + 1}), field '{field}'"
    return f"{where}: {what}: {msg}"


def _line_of(text: str, loc: tuple) -> int | None:
    """Best line for a validation location: the key's line, else its table's header."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    keys = list(loc)
    if keys and isinstance(keys[0], str) and len(keys) >= 2 and isinstance(keys[1], int):
        header = re.compile(rf"^\s*\[\[\s*{re.escape(keys[0])}\s*\]\]")
        hits = [i for i, ln in enumerate(lines) if header.match(ln)]
        if keys[1] >= len(hits):
            return None
        start = hits[keys[1]]
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), end
        )
        keys = keys[2:]
    else:
        # The longest dotted prefix that has a [table] header of its own, e.g. [defaults.thresholds.x]
        names = [k for k in keys if isinstance(k, str)]
        for n in range(len(names), 0, -1):
            dotted = r"\s*\.\s*".join(re.escape(k) for k in names[:n])
            header = re.compile(rf"^\s*\[\s*{dotted}\s*\]")
            hit = next((i for i, ln in enumerate(lines) if header.match(ln)), None)
            if hit is not None:
                start, keys = hit, names[n:]
                end = next(
                    (i for i in range(hit + 1, len(lines)) if lines[i].lstrip().startswith("[")),
                    end,
                )
                break
    for key in reversed([k for k in keys if isinstance(k, str)]):
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1 if start or loc else None
