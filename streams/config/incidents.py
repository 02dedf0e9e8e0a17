"""The site file's alert machinery: the escalation ladder, routes, routing rules and incident
limits (README "Incidents"). Validated with the rest of the site (streams/config/site.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RouteId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")]
Seconds = Annotated[float, Field(gt=0)]
Severity = Literal["warning", "critical"]
Category = Literal["crowd", "technical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """One rung of the ladder: an incident not acknowledged within ``warning_s`` (warning) or
    ``critical_s`` (critical) of reaching this tier moves up to the next."""

    name: RouteId
    warning_s: Seconds = 600.0
    critical_s: Seconds = 180.0

    def deadline_s(self, severity: str) -> float:
        return self.critical_s if severity == "critical" else self.warning_s


# After Guangzhou's grid management (../shared/notes/crowd-science.md): the grid worker on the
# spot first, then the community, the street office and the district command.
DEFAULT_TIERS = (
    Tier(name="grid", warning_s=600, critical_s=120),
    Tier(name="community", warning_s=900, critical_s=300),
    Tier(name="street", warning_s=1800, critical_s=600),
    Tier(name="district"),
)


class Escalation(_Strict):
    tiers: Annotated[list[Tier], Field(min_length=1)] = list(DEFAULT_TIERS)

    @model_validator(mode="after")
    def _unique(self) -> Escalation:
        names = [t.name for t in self.tiers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"tier names repeat: {sorted(dup)}")
        return self

    def index(self, name: str) -> int:
        return [t.name for t in self.tiers].index(name)


class Route(_Strict):
    """Where transitions go: always the topic ``{CROWDSAFE_DISPATCH_TOPIC_PREFIX}{id}``; with
    ``webhook``, the worker also POSTs each one there as JSON (retried with back-off; after
    ``max_attempts`` dead-lettered and counted)."""

    id: RouteId
    name: str = ""
    webhook: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    timeout_s: Seconds = 5.0
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    backoff_s: Seconds = 1.0  # first retry after this; doubled each time, at most 60 s
    # Records older than this are not POSTed (audited as delivery-skipped): a webhook added to
    # a route with history, or back after a long outage, gets news, not the past.
    max_age_s: Seconds = 900.0


class Rule(_Strict):
    """Sends an incident's transitions to ``routes`` when every condition given matches: its
    zone, the kind of any member alert, its category, severity, and tier (at or above
    ``min_tier``). An empty list matches everything."""

    routes: Annotated[list[RouteId], Field(min_length=1)]
    zones: list[str] = []
    kinds: list[str] = []
    categories: list[Category] = []
    severities: list[Severity] = []
    min_tier: RouteId | None = None


class IncidentSettings(_Strict):
    # A cleared incident nobody resolved is resolved by the worker after this long.
    auto_resolve_after_s: Seconds = 86_400.0
    # The longest a silence may last (planned events, maintenance).
    max_silence_s: Seconds = 86_400.0


def check_routing(routes: list[Route], rules: list[Rule], escalation: Escalation):
    """(loc, message) of the first rule naming an unknown route or tier, else None."""
    ids = [r.id for r in routes]
    for i, route in enumerate(routes):
        if ids.count(route.id) > 1:
            return ("routes", i, "id"), f"duplicate route id '{route.id}'"
    tiers = [t.name for t in escalation.tiers]
    for i, rule in enumerate(rules):
        for r in rule.routes:
            if r not in ids:
                return ("routing", i, "routes"), f"unknown route '{r}' (routes: {ids})"
        if rule.min_tier is not None and rule.min_tier not in tiers:
            return ("routing", i, "min_tier"), f"unknown tier '{rule.min_tier}' (tiers: {tiers})"
    return None
