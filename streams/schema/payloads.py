"""Versioned JSON payloads of every crowdsafe topic.

Readings come from other processes (edge counters, gates, sensors), so they are validated with
pydantic and rejected with a reason; what the worker publishes is built here and trusted.
Schemas are documented in README.md ("Topics and schemas") and, as JSON Schema, in
``deploy/schemas/`` (``crowdsafe schemas``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

# Event times outside this window are absurd for a live sensor: 2000-01-01 .. 2100-01-01.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000

SourceKind = Literal["camera", "gate", "sensor"]
NonNegative = Annotated[int, Field(ge=0)]
# Bounds far above anything real (the 2016 Spring Festival peak: ~100,000 on the square), so an
# absurd number is a rejected reading rather than an overflow inside the worker.
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Finite = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Reading(BaseModel):
    """One observation of one source, keyed by ``zone_id`` on ``crowd.readings``.

    ``count`` is the number of people in the source's view now; ``entered``/``exited`` are
    crossings since the source's previous message. A reading with neither and a ``status`` other
    than ``ok`` reports an outage (a blind camera), never a zero.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    v: Literal[1] = 1
    source_id: Annotated[str, Field(min_length=1, max_length=128)]
    kind: SourceKind
    zone_id: Annotated[str, Field(min_length=1, max_length=128)]
    ts: Annotated[int, Field(ge=MIN_TS_MS, le=MAX_TS_MS)]
    seq: Annotated[int, Field(ge=0, lt=2**63)]
    count: Count | None = None
    entered: Count | None = None
    exited: Count | None = None
    status: Literal["ok", "offline", "degraded"] = "ok"
    reason: Annotated[str, Field(max_length=500)] | None = None
    # Optional motion measures from camera edge counters (issue 4).
    speed_mps: Finite | None = None
    direction_deg: Annotated[float, Field(ge=0, le=360, allow_inf_nan=False)] | None = None
    velocity_var: Finite | None = None  # m²/s²
    pressure: Finite | None = None  # Helbing 2007, 1/s²

    @model_validator(mode="after")
    def _has_a_measurement(self) -> Reading:
        if (
            self.status == "ok"
            and self.count is None
            and self.entered is None
            and self.exited is None
        ):
            raise ValueError("an 'ok' reading needs count or entered/exited")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a '{self.status}' reading needs a reason")
        return self


class ReadingBatch(BaseModel):
    """A small batch of readings in one message (all for the message key's zone)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    v: Literal[1] = 1
    readings: Annotated[list[Reading], Field(min_length=1, max_length=1000)]


# --- What the worker publishes (validated in tests; JSON Schemas in deploy/schemas/) ----------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceStatus(_Out):
    fresh: list[str]
    stale: list[str]
    offline: list[str]


class ZoneState(_Out):
    """One record of ``crowd.zone-state`` (keyed by ``zone_id``)."""

    v: Literal[1]
    zone_id: str
    name: str
    kind: Literal["walkway", "queuing", "stairway"]
    ts: int
    occupancy: float | None
    area_m2: float
    density: float | None
    los: Literal["A", "B", "C", "D", "E", "F"] | None
    warning: float
    critical: float
    sources: SourceStatus
    anomaly_score: Annotated[float, Field(ge=0, le=1)] | None
    minutes_to_warning: float | None
    minutes_to_critical: float | None
    minutes_to_critical_low: float | None
    minutes_to_critical_high: float | None


class Alert(_Out):
    """One record of ``crowd.alerts`` (keyed by ``zone_id``): a transition of an episode."""

    v: Literal[1]
    alert_id: str
    zone_id: str
    zone_name: str
    kind: Literal["density", "anomaly", "forecast", "source-offline"]
    severity: Literal["warning", "critical"]
    state: Literal["raised", "escalated", "cleared"]
    value: float | None
    threshold: float
    started_at: int
    ts: int
    message: str


class DeadLetter(_Out):
    """One record of ``crowd.deadletter``: a rejected input and why."""

    v: Literal[1]
    reason: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    received_at: int


SCHEMAS: dict[str, type[BaseModel]] = {
    "reading": Reading,
    "reading-batch": ReadingBatch,
    "zone-state": ZoneState,
    "alert": Alert,
    "deadletter": DeadLetter,
}
