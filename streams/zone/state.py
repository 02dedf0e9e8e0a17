"""A zone's state as the worker's table stores it: typed, versioned, msgpack-encoded.

One :class:`ZoneState` per zone: each source's last ``seq`` and level estimate, the gate
integral, the alert episodes and the learned state of the two detectors; about 1.5 KB encoded
(the version 1 JSON dict was 3.5 KB). Structs are encoded as msgpack arrays (field order is the
format: append new fields at the end, with defaults, and bump :data:`VERSION` for anything else).
Nothing configurable is stored: areas, thresholds and the time zone come from the site file.

:func:`decode_state` reads this encoding and migrates the JSON dict that the worker stored
before (version 1; a JSON object starts with ``{``, a msgpack array never does). Anything else
raises :class:`StateUnreadable`, so the caller can start the zone afresh instead of failing on
each of its readings for ever.
"""

from __future__ import annotations

from typing import Any

import msgspec

from detectors.alerting import Episode
from detectors.anomaly import SeasonalAnomalyDetector

VERSION = 2  # 1: the JSON dict stored by the worker before msgpack (migrated on read)


class StateUnreadable(ValueError):
    """The stored bytes are not a zone state this code can read."""


class SourceState(msgspec.Struct, array_like=True):
    """What one source last said to the zone."""

    kind: str
    seq: int  # the highest seq applied: anything at or below it is a re-delivery
    ts: int  # event time (ms) of its newest reading
    status: str = "ok"
    reason: str | None = None
    estimate: float | None = None  # level estimate (persons) from its last count...
    estimate_ts: int | None = None  # ... stamped with that reading's time
    flow_ts: int | None = None  # event time of its last gate crossings
    resets: int = 0  # times its seq went back while its event time went on (counter restarts)
    # Source health (detectors/source_health.py, the source-fault alert kind):
    held_since: int | None = None  # level sources: event time its level took its current value
    held_level: float | None = None  # ... the other level sources' fused estimate then
    held_net: float = 0.0  # ... and the zone's gate net count then
    net_flow: float = 0.0  # gates: entered - exited, summed since it was first seen
    ratio: float | None = None  # EWMA of log(its estimate / the others'), event time
    ratio_ts: int | None = None  # ... event time of its last update
    disagree_since: int | None = None  # since when that EWMA is beyond the disagree factor


class EpisodeState(msgspec.Struct, array_like=True):
    """One alarm's :class:`detectors.alerting.Episode`."""

    severity: str | None = None
    started_at: int = 0
    above_since: int | None = None
    safe_since: int | None = None

    @classmethod
    def of(cls, ep: Episode) -> EpisodeState:
        return cls(ep.severity, ep.started_at, ep.above_since, ep.safe_since)

    def episode(self) -> Episode:
        return Episode(self.severity, self.started_at, self.above_since, self.safe_since)  # type: ignore[arg-type]


class AnomalyState(msgspec.Struct, array_like=True):
    """:meth:`detectors.anomaly.SeasonalAnomalyDetector.to_state` (its keys, in order)."""

    v: int
    t: float | None
    tr: float
    n: float
    lv: float
    b: list[float]
    sg: float
    m: list[float]
    q: list[float]
    a: bytes  # the profiles: float32, byte planes, deflated
    h: bytes = b""  # the holiday offsets, packed alike (version 3; none before)

    @classmethod
    def of(cls, state: dict[str, Any]) -> AnomalyState:
        return cls(**state)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class ForecastState(msgspec.Struct, array_like=True):
    """:meth:`detectors.forecast.DensityForecaster.to_state`: learned sums, no configuration.

    ``v`` is the forecaster's own version: a state it cannot resume (an older trend's sums)
    decodes here all the same, and the processor starts that zone's trend afresh."""

    v: int
    t: float | None
    step: float
    sums: list[float]
    inflow: list[float]
    last: float | None = None  # the newest reading (forecaster version 3 on)
    # The gates' straight line beyond ``inflow`` (its sums of t, t², t y, y², w, the rates'
    # count), the newest inflow's time and the inflow not yet spread over minutes; only for
    # zones whose gates ever reported. Trailing and optional: states stored before it decode
    # (a 5-long one, from before the count, too); the line then starts anew.
    gate: list[float] | None = None

    @classmethod
    def of(cls, state: dict[str, Any]) -> ForecastState:
        return cls(
            state["v"], state["t"], state["st"], state["s"], state["in"], state["y"], state.get("g")
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "v": self.v,
            "t": self.t,
            "st": self.step,
            "s": self.sums,
            "in": self.inflow,
            "y": self.last,
        }
        return out if self.gate is None else {**out, "g": self.gate}


class ZoneState(msgspec.Struct, array_like=True):
    """Everything the worker keeps about one zone between batches."""

    v: int = VERSION
    ts: int = 0  # event time (ms) of the newest reading applied
    arrived_ms: int | None = None  # wall clock when readings last arrived (silence sweep)
    gate_occupancy: float = 0.0
    sources: dict[str, SourceState] = {}
    episodes: dict[str, EpisodeState] = {}
    anomaly: AnomalyState | None = None
    forecast: ForecastState | None = None
    judged_ts: int = 0  # event time the zone was last judged at: outputs never go before it


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ZoneState)


def encode_state(state: ZoneState) -> bytes:
    """The table's bytes for ``state``.

    >>> state = ZoneState(ts=5, sources={"cam": SourceState("camera", seq=3, ts=5)})
    >>> decode_state(encode_state(state)) == state
    True
    """
    return _ENCODER.encode(state)


def decode_state(raw: bytes) -> ZoneState:
    """A zone state from the table's bytes: this version's msgpack, or version 1's JSON dict.

    >>> decode_state(b'{"sources": {}, "gate_occupancy": 12.5, "episodes": {}}').gate_occupancy
    12.5
    >>> decode_state(b"\\x93garbage")
    Traceback (most recent call last):
    ...
    streams.zone.state.StateUnreadable: not a zone state: ...
    """
    if raw[:1] == b"{":
        try:
            return migrate_v1(msgspec.json.decode(raw))
        except msgspec.MsgspecError as exc:
            raise StateUnreadable(f"version 1 state is not JSON: {exc}") from exc
    try:
        state = _DECODER.decode(raw)
    except msgspec.MsgspecError as exc:
        raise StateUnreadable(f"not a zone state: {exc}") from exc
    if state.v != VERSION:
        raise StateUnreadable(f"zone state version {state.v}, this code reads {VERSION}")
    return state


def migrate_v1(old: Any) -> ZoneState:
    """Version 1 (the worker's JSON dict, detector states with their configuration) -> now.

    The detectors' stored configuration is dropped: the processor builds them from the site.
    """
    if not isinstance(old, dict):
        raise StateUnreadable(f"version 1 state is a {type(old).__name__}, not an object")
    try:
        state = ZoneState(
            ts=old.get("ts", 0),
            arrived_ms=old.get("arrived_ms"),
            gate_occupancy=old.get("gate_occupancy", 0.0),
            sources={
                sid: SourceState(
                    s["kind"],
                    s["seq"],
                    s["ts"],
                    s.get("status", "ok"),
                    s.get("reason"),
                    s.get("estimate"),
                    s.get("estimate_ts"),
                    s.get("flow_ts"),
                )
                for sid, s in old.get("sources", {}).items()
            },
            episodes={k: EpisodeState(**e) for k, e in old.get("episodes", {}).items()},
        )
        if "anomaly" in old:  # base64 text arrays -> packed bytes, through the detector
            det = SeasonalAnomalyDetector.from_state(old["anomaly"])
            state.anomaly = AnomalyState.of(det.to_state())
        # A version 1 forecast (a straight line's sums) cannot be resumed by the quadratic
        # forecaster: it is dropped, and the zone's trend is learnt again within minutes.
        # Round trip: checks every field's type as a decode of the new encoding would.
        return _DECODER.decode(_ENCODER.encode(state))
    except StateUnreadable:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, msgspec.MsgspecError) as exc:
        raise StateUnreadable(f"version 1 state: {exc!r}") from exc
