"""Decoding ``crowd.readings`` messages: bytes in, validated readings or a :class:`Rejected`
with the dead-letter reason and its fixed class.

msgspec decodes and validates in one pass straight into :class:`Reading` structs (no
intermediate dict), which is most of the cost of intake.
"""

from __future__ import annotations

import functools
import re
from typing import TypeVar

import msgspec

from streams.config.site import Site
from streams.schema.payloads import Reading, ReadingBatch

T = TypeVar("T")
MAX_MESSAGE_BYTES = 1_000_000  # a batch of 1000 readings is ~200 kB

# "Expected `int` >= 0 - at `$.readings[3].count`": the message, then where.
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_OPEN_BRACKET = ord("[")


class Rejected(ValueError):
    """An input message that cannot be used; ``str()`` is the dead-letter reason and ``code``
    a fixed class of it (a low-cardinality metric label)."""

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.code = code


@functools.cache
def _decoders() -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    # Built on first use, not at import; one decoder per shape is faster than a Union (which
    # msgspec only allows between Structs with a tag field, which readings do not have).
    return msgspec.json.Decoder(Reading), msgspec.json.Decoder(ReadingBatch)


def decode_readings(value: bytes) -> list[Reading]:
    """The readings of one message (a reading or a batch), or :class:`Rejected` (``json`` or
    ``invalid``). A message is a batch when its top-level object has a ``readings`` field.

    >>> decode_readings(b'{"source_id":"g","kind":"gate","zone_id":"z","ts":946684800000,'
    ...                 b'"seq":1,"entered":-3}')
    Traceback (most recent call last):
    streams.schema.intake.Rejected: invalid reading: entered: Expected int >= 0
    >>> decode_readings(b'{"readings": [{"kind": "gate"}]}')
    Traceback (most recent call last):
    streams.schema.intake.Rejected: invalid reading: readings.0.source_id: field required
    >>> decode_readings(b'{"source_id":"g","kind":"gate","zone_id":"z","ts":17')  # cut short
    Traceback (most recent call last):
    streams.schema.intake.Rejected: not JSON: Input data was truncated
    """
    one, batch = _decoders()
    try:
        if not value.isascii():
            # msgspec checks UTF-8 only in the strings it keeps: an unknown field's bad bytes
            # would pass. isascii() is a fast scan; the slow check only for non-ASCII messages.
            value.decode()
        # A batch has a JSON array; a plain reading normally none. `int in bytes` is a memchr
        # (~15 ns; a substring search costs ~10x that). A reading with a "[" somewhere (an
        # unknown list field, a bracket in a string) is read by the batch decoder, which skips
        # every reading field, finds no `readings` at the top level and hands it on.
        if _OPEN_BRACKET in value:
            try:
                return batch.decode(value).readings
            except msgspec.ValidationError as exc:
                if str(exc) != "Object missing required field `readings`":
                    raise
        return [one.decode(value)]
    except msgspec.ValidationError as exc:
        # Validation stops at the first wrong field, before the parser has seen the rest: a
        # truncated message ('..."ts":17') would be called an invalid reading. Not JSON first.
        if " - at " in str(exc):  # a field's error (a message that is no object stops at once)
            try:
                msgspec.json.decode(value)
            except msgspec.ValidationError:
                pass  # JSON, with a number beyond 64 bits somewhere (a subclass of DecodeError)
            except (msgspec.DecodeError, RecursionError) as not_json:
                raise Rejected(f"not JSON: {not_json}", "json") from None
        raise _rejected(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # Bad JSON, bad UTF-8, absurd nesting (in an ignored field: msgspec still parses it).
        raise Rejected(f"not JSON: {exc}", "json") from None


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
    readings = decode_readings(value)
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


def _rejected(error: str) -> Rejected:
    """A msgspec validation error as a dead-letter reason naming the field.

    >>> str(_rejected("Expected `int` >= 0 - at `$.readings[3].count`"))
    'invalid reading: readings.3.count: Expected int >= 0'
    >>> r = _rejected("Expected `object`, got `array`"); (str(r), r.code)
    ('expected a JSON object, got array', 'json')
    >>> _rejected("Number out of range").code  # the whole message is 1e400
    'json'
    """
    if error.startswith("Expected `object`, got ") and " - at " not in error:
        return Rejected(f"expected a JSON object, got {error.rsplit(' ', 1)[1].strip('`')}", "json")
    if error in ("Number out of range", "Integer value out of range"):  # the message is one
        return Rejected("expected a JSON object, got a number out of range", "json")
    return Rejected(f"invalid reading: {describe(error)}")


def describe(error: str | msgspec.ValidationError) -> str:
    """``field.path: what is wrong`` for a msgspec validation error (``message`` when it is about
    the whole message), in the dotted style of the dead-letter reasons.

    >>> describe("an 'ok' reading needs count or entered/exited - at `$.readings[0]`")
    "readings.0: an 'ok' reading needs count or entered/exited"
    >>> describe("Object missing required field `ts`")
    'ts: field required'
    >>> describe("Expected `str` of length <= 128 - at `$.source_id`")
    'source_id: Expected str of length <= 128'
    """
    m = _AT.match(str(error))
    assert m is not None  # the pattern matches any string
    msg, parts = m["msg"], [p for p in re.split(r"[.\[\]]+", m["path"] or "") if p]
    if missing := _MISSING.match(msg):
        parts.append(missing["field"])
        msg = "field required"
    return f"{'.'.join(parts) or 'message'}: {msg.replace('`', '')}"


def parse_keyed(key: bytes | None, value: bytes | None, site: Site, model: type[T]) -> T:
    """Decode an acknowledgement or a silence (``model``) keyed by a zone id of ``site``, or
    raise :class:`Rejected` naming the field.

    >>> from streams.schema.incident import Ack
    >>> from streams.config.site import load_site
    >>> from streams.config.paths import bundled_site
    >>> site = load_site(bundled_site())
    >>> parse_keyed(b"ticket-hall", b'{"v":1,"incident_id":"ticket-hall/crowd/1","ts":1764000000000}',
    ...             site, Ack)
    Traceback (most recent call last):
    streams.schema.intake.Rejected: invalid ack: by: field required
    """
    what = model.__name__.lower()
    if not value:
        raise Rejected("empty message", "empty")
    if not key:
        raise Rejected(f"no message key: a {what} is keyed by its zone id", "key")
    if len(value) > MAX_MESSAGE_BYTES:
        raise Rejected(f"message of {len(value)} bytes (at most {MAX_MESSAGE_BYTES})", "size")
    zone_id = key.decode(errors="replace")
    if zone_id not in site.zone_by_id:
        raise Rejected(f"message key '{zone_id[:200]}' is no zone of this site", "unknown-zone")
    try:
        if not value.isascii():
            value.decode()
        return msgspec.json.decode(value, type=model)
    except msgspec.ValidationError as exc:
        raise Rejected(f"invalid {what}: {describe(exc)}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise Rejected(f"not JSON: {exc}", "json") from None
