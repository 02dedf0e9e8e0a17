"""Decoding ``crowd.readings`` messages: bytes in, validated readings or a :class:`Rejected`
with the dead-letter reason and its fixed class."""

from __future__ import annotations

import json

from pydantic import ValidationError

from streams.config.site import Site
from streams.schema.payloads import Reading, ReadingBatch

MAX_MESSAGE_BYTES = 1_000_000  # a batch of 1000 readings is ~200 kB


class Rejected(ValueError):
    """An input message that cannot be used; ``str()`` is the dead-letter reason and ``code``
    a fixed class of it (a low-cardinality metric label)."""

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.code = code


def parse_message(
    key: bytes | None, value: bytes | None, site: Site, latest_ok_ms: int | None = None
) -> list[Reading]:
    """Decode one ``crowd.readings`` message (a reading or a batch) or raise :class:`Rejected`.

    ``latest_ok_ms`` rejects event times further in the future than a clock skew can explain
    (history is fine: replays publish it on purpose).
    """
    if not value:
        raise Rejected("empty message", "empty")
    if not key:
        # The key decides the partition, and so which table partition holds the zone's state.
        raise Rejected("no message key: readings are keyed by zone_id", "key")
    if len(value) > MAX_MESSAGE_BYTES:
        raise Rejected(f"message of {len(value)} bytes (at most {MAX_MESSAGE_BYTES})", "size")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting or digits
        raise Rejected(f"not JSON: {exc}", "json") from exc
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type(data).__name__}", "json")
    try:
        readings = (
            ReadingBatch.model_validate(data).readings
            if "readings" in data
            else [Reading.model_validate(data)]
        )
    except ValidationError as exc:
        raise Rejected(_validation_reason(exc)) from exc
    zone_key = key.decode(errors="replace")
    for r in readings:
        if r.zone_id not in site.zone_by_id:
            raise Rejected(f"unknown zone '{r.zone_id}'", "unknown-zone")
        if latest_ok_ms is not None and r.ts > latest_ok_ms:
            raise Rejected(f"ts {r.ts} is in the future (after {latest_ok_ms})", "future")
        if zone_key != r.zone_id:
            raise Rejected(
                f"message key '{zone_key}' is not the reading's zone_id '{r.zone_id}'", "key"
            )
    return readings


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "invalid reading: " + "; ".join(parts)
