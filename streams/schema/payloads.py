"""Versioned JSON payloads of every crowdsafe topic, as msgspec Structs.

One library on the hot path: readings are decoded *and* validated by msgspec in one pass (typed
decoders in :mod:`streams.schema.intake`), and every record the worker publishes is built as one
of the output Structs here and encoded by msgspec. ``crowdsafe schemas`` writes the JSON Schemas
in ``deploy/schemas/`` from these same classes, so the documentation cannot drift from the code.
Schemas are described in README.md ("Topics and schemas").

msgspec checks types and constraints when it *decodes* or ``convert``\\ s, not when a Struct is
constructed in code; the cross-field rules of :class:`Reading` live in ``__post_init__``, which
runs in both cases.
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

SCHEMA_VERSION: Final = 1
# The ``v`` field's type: the one version this code reads and writes (SCHEMA_VERSION).
Version = Literal[1]

# Event times outside this window are absurd for a live sensor: 2000-01-01 .. 2100-01-01.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000

SourceKind = Literal["camera", "gate", "sensor"]
Id = Annotated[str, Meta(min_length=1, max_length=128)]
# Bounds far above anything real (the 2016 Spring Festival peak: ~100,000 on the square), so an
# absurd number is a rejected reading rather than an overflow inside the worker.
Count = Annotated[int, Meta(ge=0, le=1_000_000)]
# JSON has no inf/NaN and msgspec rejects an overflowing literal (1e400); __post_init__ also
# rejects them from Python callers (msgspec.convert, constructors).
NonNegative = Annotated[float, Meta(ge=0)]


_MOTION = ("speed_mps", "direction_deg", "velocity_var", "pressure")
_NO_MOTION = (None, None, None, None)


class Reading(msgspec.Struct, kw_only=True):
    """One observation of one source, keyed by ``zone_id`` on ``crowd.readings``.

    ``count`` is the number of people in the source's view now; ``entered``/``exited`` are
    crossings since the source's previous message. An ``ok`` reading needs ``count`` or
    ``entered``/``exited``; any other ``status`` needs a ``reason`` and reports an outage (a blind
    camera), never a zero. Unknown fields are ignored.
    """

    v: Version = SCHEMA_VERSION
    source_id: Id
    kind: SourceKind
    zone_id: Id
    ts: Annotated[int, Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
    seq: Annotated[int, Meta(ge=0, le=2**63 - 1)]
    count: Count | None = None
    entered: Count | None = None
    exited: Count | None = None
    status: Literal["ok", "offline", "degraded"] = "ok"
    reason: Annotated[str, Meta(max_length=500)] | None = None
    # Optional motion measures from camera edge counters (issue 4).
    speed_mps: NonNegative | None = None
    direction_deg: Annotated[float, Meta(ge=0, le=360)] | None = None
    velocity_var: NonNegative | None = None  # m²/s²
    pressure: NonNegative | None = None  # Helbing 2007, 1/s²
    # Not a live measurement (the simulator, a replay of history): a zone fed such readings
    # publishes its CAP messages as Exercise, never Actual. Optional, added later.
    simulated: bool = False

    def __post_init__(self) -> None:
        # A ValueError here becomes a msgspec.ValidationError with the reading's path.
        if self.status == "ok":
            if self.count is None and self.entered is None and self.exited is None:
                raise ValueError("an 'ok' reading needs count or entered/exited")
        elif not self.reason:
            raise ValueError(f"a '{self.status}' reading needs a reason")
        motion = (self.speed_mps, self.direction_deg, self.velocity_var, self.pressure)
        if motion != _NO_MOTION:  # most readings: no motion fields, one comparison
            for name, x in zip(_MOTION, motion, strict=True):
                if x is not None and not math.isfinite(x):
                    raise ValueError(f"{name}: must be a finite number")


class ReadingBatch(msgspec.Struct, kw_only=True):
    """A small batch of readings in one message (all for the message key's zone)."""

    v: Version = SCHEMA_VERSION
    readings: Annotated[list[Reading], Meta(min_length=1, max_length=1000)]


# --- What the worker publishes (JSON Schemas in deploy/schemas/) -------------------------------
# Every field is required and written, nulls included (omit_defaults=False): consumers in other
# languages see one fixed shape. Decoding one (tests, consumers) refuses unknown fields.


class _Out(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=False):
    pass


class FaultySource(_Out):
    """A fresh level source that reports but is judged faulty (the ``source-fault`` alert kind).
    It stays in ``fresh`` and in the zone's occupancy: leaving it out is a later decision."""

    source_id: str
    fault: Literal["stuck", "disagreeing"]
    since: int  # event time (ms): stuck at its value since / disagreeing since
    # stuck: the zone estimate (people) it is stuck at; disagreeing: its estimate over the other
    # level sources' (smoothed; 3.0 reads three times as many, 0.33 a third)
    value: float


class SourceStatus(_Out):
    """A zone's sources by state, ids sorted; ``faulty`` (added later, so optional): fresh
    sources judged stuck or disagreeing, by id."""

    fresh: list[str]
    stale: list[str]
    offline: list[str]
    faulty: list[FaultySource] = []


class ZoneState(_Out):
    """One record of ``crowd.zone-state`` (keyed by ``zone_id``)."""

    # Also the snapshot the alert kinds judge (streams.zone.alerts): they see what is published.

    v: Version
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
    anomaly_score: Annotated[float, Meta(ge=0, le=1)] | None
    minutes_to_warning: float | None
    minutes_to_critical: float | None
    minutes_to_critical_low: float | None
    minutes_to_critical_high: float | None
    # The anomaly detector's warm-up: "learning-day" (no score yet), "learning-week" (scored
    # against the hours of day while the weekdays are learned), "warm"; None: never fed.
    anomaly_stage: Literal["learning-day", "learning-week", "warm"] | None = None
    # What the site's calendar says is in force: a public holiday, a planned event (None: an
    # ordinary day).
    calendar: str | None = None


# A constrained string rather than a Literal of the built-in kinds: a kind registered later
# (streams.zone.alerts.register) publishes without a schema change.
AlertKindName = Annotated[
    str,
    Meta(
        pattern="^[a-z][a-z0-9-]*$",
        max_length=64,
        description="an alert kind: density, anomaly, forecast, source-offline, source-fault, "
        "or one registered later",
        examples=["density"],
    ),
]


class Alert(_Out):
    """One record of ``crowd.alerts`` (keyed by ``zone_id``): a transition of an episode."""

    v: Version
    alert_id: str
    zone_id: str
    zone_name: str
    kind: AlertKindName
    severity: Literal["warning", "critical"]
    state: Literal["raised", "escalated", "cleared"]
    value: float | None
    threshold: float
    started_at: int
    ts: int
    message: str


class DeadLetter(_Out):
    """One record of ``crowd.deadletter``: a rejected input and why."""

    v: Version
    reason: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str  # the original bytes, cut to 512 KiB when longer (then ``truncated``)
    received_at: int
    value_bytes: int | None = None  # length of the original value
    truncated: bool = False
