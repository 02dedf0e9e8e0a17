"""Hostile and valid ``crowd.readings`` messages for the fuzz test (``tests/fuzz/``).

Hypothesis draws the messages: valid readings and batches for the site's zones and sources, and
malformed, truncated, oversized, wrongly typed and hostile ones. Every message carries its
expected fate, known *by construction* (never by asking the worker's own parser): a truncated
JSON object is ``json``, a count of -1 is ``invalid``, a reading an hour ahead is ``future``...
The dead-letter classes are those of ``crowdsafe_readings_rejected_total{reason}`` (README,
"crowd.deadletter"), plus ``late`` and ``future`` from the event-time policy.

Hypothesis only *generates* here: a plan of 100,000 messages is drawn in chunks (one example per
chunk of :data:`CHUNK` messages, ``phases=[Phase.generate]``: no shrinking, which against a live
worker would mean re-running the whole stream per step). :class:`Plan` then gives each valid
reading its ``seq`` (increasing per source) and event time (increasing in production order, all
within :data:`WINDOW_MS` before the plan's start, so the event-time policy accepts them) and
encodes it with the standard library's ``json``.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from streams.config.site import Site

CHUNK = 50  # hostile messages drawn per hypothesis example
ROUND = 50  # examples per hypothesis run
WINDOW_MS = 800_000  # valid event times: within this before the plan's start (lateness: 900 s)
MAX_KEPT = 512 * 1024  # what a dead letter keeps of the original bytes (streams/worker/publish.py)
KEY_KEPT = 1000  # what key_b64 keeps of the key
SIZE_LIMIT = 1_000_000  # the worker's message size check (streams/schema/intake.py)

# Dead-letter reasons start with these (README, "crowd.deadletter"), by class.
REASON_PREFIX = {
    "json": ("not JSON: ", "expected a JSON object, got "),
    "invalid": ("invalid reading: ",),
    "key": ("no message key", "message key '"),
    "unknown-zone": ("unknown zone '",),
    "empty": ("empty message",),
    "size": ("message of ",),
    "future": ("future: ",),
    "late": ("late: ",),
}
MESSAGE_CLASSES = ("json", "invalid", "key", "unknown-zone", "empty", "size")
BAD_UTF8 = (
    b"\xff",
    b"\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf5\x80\x80\x80",
    b"\xe2\x82",
    b"\x80",
)
_BAD = "@@BAD@@"  # a placeholder replaced by invalid UTF-8 once encoded
_ZONE = object()  # the message key is the readings' zone
UNKNOWN_SOURCES = tuple(f"fz-src-{i}" for i in range(6))  # a small pool: zone state stays small


@dataclass
class Spec:
    """One drawn message, before :class:`Plan` gives its readings a ``seq`` and a time.

    ``readings``: reading dicts; ``"_when"`` in one is ``future`` or ``late`` (the event-time
    policy dead-letters it alone). ``fate``: ``valid`` (readings applied, or dead-lettered one by
    one when ``_when`` says so), ``resend`` (an earlier valid message again: duplicates) or the
    dead-letter class of the whole message.
    """

    case: str
    fate: str
    readings: list[dict] = field(default_factory=list)
    batch: bool = False
    key: Any = _ZONE  # _ZONE, None or bytes
    edit: Callable[[list[dict]], None] | None = None  # on the readings, once timed
    wrap: Callable[[bytes], bytes | None] | None = None  # on the encoded value
    extras: list[tuple[str, str]] = field(default_factory=list)  # raw JSON fields at top level
    misplaced: bool = False  # sent to the partition its key does not map to
    resend_at: float = 0.0  # resend: which earlier valid message (fraction of those so far)


@dataclass
class Message:
    """A message to produce and what must become of it."""

    case: str
    fate: str  # valid, resend, or a message-level dead-letter class
    key: bytes | None
    value: bytes | None
    zone: str | None
    applied: int = 0  # readings that must be applied
    duplicates: int = 0  # readings that must be dropped as re-deliveries
    reading_dead: Counter = field(default_factory=Counter)  # late/future readings: class -> n
    misplaced: bool = False

    @property
    def dead_letters(self) -> int:
        return (1 if self.fate in MESSAGE_CLASSES else 0) + sum(self.reading_dead.values())


def encode(obj: Any, extras: list[tuple[str, str]] = ()) -> bytes:
    """Compact JSON with ``extras`` (name, raw JSON) appended to the top-level object: raw, so a
    5000-digit integer or 1e400 goes through as written."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if extras:
        text = text[:-1] + "".join(f",{json.dumps(k)}:{v}" for k, v in extras) + "}"
    return text.encode()


class Plan:
    """Messages in production order, with the counts they must add up to."""

    def __init__(self, site: Site, start_ms: int | None = None) -> None:
        self.site = site
        self.t0 = int(time.time() * 1000) if start_ms is None else start_ms
        self.messages: list[Message] = []
        self._seq: Counter = Counter()
        self._tick = 0
        self._valid: list[Message] = []  # pure-valid messages, for resends
        self._misplaced = 0
        self._hostile = 0
        self._big = 0

    # -- the counts ------------------------------------------------------------------------
    @property
    def hostile(self) -> int:
        return self._hostile

    def totals(self) -> dict[str, int]:
        out = Counter()
        for m in self.messages:
            out["messages"] += 1
            out["applied"] += m.applied
            out["duplicates"] += m.duplicates
            out["dead_letters"] += m.dead_letters
            out["misplaced"] += m.misplaced
            # Re-routed by the worker: misplaced, keyed, and not over the size limit.
            out["rerouted"] += m.misplaced and len(m.value or b"") <= SIZE_LIMIT
            if m.fate in MESSAGE_CLASSES:
                out[f"dl:{m.fate}"] += 1
            for code, n in m.reading_dead.items():
                out[f"dl:{code}"] += n
        out["produced"] = out["applied"] + out["duplicates"] + out["dead_letters"]
        return dict(out)

    def cases_big(self) -> int:
        return self._big

    def cases(self) -> Counter:
        return Counter(m.case for m in self.messages)

    # -- building ---------------------------------------------------------------------------
    def warm_up(self) -> list[Message]:
        """One valid reading per zone at the window's start: every zone then has a watermark, so
        a reading hours older is ``late`` whatever it is batched with."""
        out = []
        for zone in self.site.zones:
            r = {"source_id": "fz-warm-up", "kind": "sensor", "zone_id": zone.id, "count": 1}
            out.append(self.add(Spec("valid/warm-up", "valid", [r])))
        return out

    def _time(self, r: dict, tick: int) -> None:
        when = r.pop("_when", None)
        if when == "future":  # hours ahead of any clock skew bound
            r["ts"] = self.t0 + r.pop("_offset_ms")
        elif when == "late":  # hours behind every zone's watermark
            r["ts"] = self.t0 - WINDOW_MS - r.pop("_offset_ms")
        else:
            r["ts"] = self.t0 - WINDOW_MS + min(self._tick, WINDOW_MS)
            self._tick += tick
        sid = r["source_id"]
        if isinstance(sid, str):
            self._seq[sid] += 1
            r["seq"] = self._seq[sid]
        else:
            r["seq"] = 1

    def add(self, spec: Spec) -> Message:
        if spec.fate == "resend":
            if not self._valid:
                spec = Spec("json/not-json", "json", key=b"main-square", wrap=lambda b: b"{{")
            else:
                old = self._valid[min(int(spec.resend_at * len(self._valid)), len(self._valid) - 1)]
                msg = Message(
                    "valid/resend", "resend", old.key, old.value, old.zone, duplicates=old.applied
                )
                self.messages.append(msg)
                return msg
        whens = [r.get("_when") for r in spec.readings]
        zone = spec.readings[0]["zone_id"] if spec.readings else None  # before any edit
        for r in spec.readings:  # time moves on with valid readings only
            self._time(r, tick=int(spec.fate == "valid"))
        if spec.edit is not None:
            spec.edit(spec.readings)
        if spec.batch:
            body: Any = {"v": 1, "readings": spec.readings}
        else:
            body = spec.readings[0] if spec.readings else {}
        value: bytes | None = encode(body, spec.extras)
        if spec.wrap is not None:
            value = spec.wrap(value)
        key = spec.key
        if key is _ZONE:
            key = zone.encode() if zone is not None else None
        if spec.misplaced and spec.fate != "valid":
            # Its dead letter names the re-routed copy's offset: found by this unique key.
            self._misplaced += 1
            key = f"fz-mis-{self._misplaced}".encode()
        msg = Message(spec.case, spec.fate, key, value, zone, misplaced=spec.misplaced)
        self._hostile += not spec.case.startswith("valid/")
        self._big += spec.case.startswith("big/")
        if spec.fate == "valid":
            for w in whens:
                if w is None:
                    msg.applied += 1
                else:
                    msg.reading_dead[w] += 1
            if not msg.reading_dead and not spec.misplaced:
                self._valid.append(msg)
        self.messages.append(msg)
        return msg


# --- strategies ------------------------------------------------------------------------------

_text = st.text(max_size=40)
_id_text = st.text(min_size=1, max_size=60)


def _sources(site: Site) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {z.id: [] for z in site.zones}
    for s in site.sources:
        for z in s.zones:
            out[z].append((s.id, s.kind))
    return out


@st.composite
def valid_reading(draw, site: Site, zone: str | None = None, unique_source: str | None = None):
    """A reading the worker must apply: a site source of the zone (or an unknown one), the
    fields its kind needs, sometimes an outage, motion fields, a schema version."""
    sources = _sources(site)
    zone = zone or draw(st.sampled_from(sorted(sources)))
    if unique_source is not None:
        sid, kind = unique_source, draw(st.sampled_from(["camera", "gate", "sensor"]))
    else:
        options = sources[zone] + [(s, k) for s in UNKNOWN_SOURCES for k in ("camera", "sensor")]
        sid, kind = draw(st.sampled_from(options))
    r: dict[str, Any] = {"source_id": sid, "kind": kind, "zone_id": zone}
    if draw(st.booleans()):
        r["v"] = 1
    people = st.integers(0, 800) | st.integers(0, 1_000_000)
    status = draw(st.sampled_from(["ok"] * 8 + ["offline", "degraded"]))
    if status != "ok":
        r["status"], r["reason"] = status, draw(st.text(min_size=1, max_size=80))
    elif kind == "gate":
        fields = draw(st.sampled_from([("entered", "exited"), ("entered",), ("exited",)]))
        r.update({f: draw(people) for f in fields})
    else:
        r["count"] = draw(people)
    if kind == "camera" and status == "ok" and draw(st.integers(0, 3)) == 0:
        finite = st.floats(0, 50, allow_nan=False, allow_infinity=False)
        r["speed_mps"] = draw(finite)
        r["direction_deg"] = draw(st.floats(0, 360, allow_nan=False))
        r["velocity_var"], r["pressure"] = draw(finite), draw(finite)
    return r


# Unknown fields the worker must ignore: raw JSON, some of it hostile-looking but valid.
_noise = st.one_of(
    st.just("9" * 5000),  # a 5000-digit integer
    st.just("1e400"),  # overflows a float, in a field nobody reads
    st.just('"[not a batch]"'),
    st.integers(-(2**70), 2**70).map(str),
    _text.map(json.dumps),
    st.integers(1, 60).map(lambda d: "[" * d + "]" * d),  # nesting well within limits
    st.just('{"readings": 1}'),  # a nested "readings" is not a batch
)


@st.composite
def valid_message(draw, site: Site) -> Spec:
    """One reading or a batch of one zone's readings; sometimes extra fields, a future or late
    reading among them (dead-lettered alone), or sent to the wrong partition (re-routed)."""
    zone = draw(st.sampled_from(sorted(z.id for z in site.zones)))
    misplaced = draw(st.integers(1, 60)) == 30
    if misplaced:  # re-routed: it arrives later, so its source must be its own
        unique = f"fz-mis-src-{draw(st.integers(0, 2**40))}"
        readings = [draw(valid_reading(site, zone, unique_source=unique))]
    else:
        n = draw(st.sampled_from([1] * 6 + [2, 3, 5, 20]))
        readings = [draw(valid_reading(site, zone)) for _ in range(n)]
        for r in readings:
            when = draw(st.sampled_from([None] * 30 + ["future", "late"]))
            if when == "future":
                r["_when"], r["_offset_ms"] = when, draw(st.integers(3_600_000, 48 * 3_600_000))
            elif when == "late":
                r["_when"], r["_offset_ms"] = when, draw(st.integers(3_600_000, 30 * 86_400_000))
    batch = len(readings) > 1 or draw(st.integers(0, 5)) == 0
    extras = draw(st.lists(st.tuples(st.sampled_from(["x", "note", "meta"]), _noise), max_size=2))
    extras = list(dict(extras).items())  # unique names
    case = "valid/misplaced" if misplaced else ("valid/batch" if batch else "valid/reading")
    return Spec(case, "valid", readings, batch=batch, extras=extras, misplaced=misplaced)


# -- hostile ---------------------------------------------------------------------------------

_WRONG = {  # field -> JSON values of the wrong type for it
    "source_id": [5, True, [], {}, None],
    "kind": [1, None, ["camera"]],
    "zone_id": [7, False, None, {"id": "main-square"}],
    "ts": ["1764000000000", 1.5e12, True, None, []],
    "seq": ["1", 1.5, False, None],
    "count": ["5", 5.0, True, [5], {}],
    "status": [None, 0, True],
    "v": ["1", 1.0, True, None],
    "speed_mps": ["fast", True, []],
    "direction_deg": ["north", False],
}
_RANGE = {  # raw JSON out of range
    "count": ["-1", "-1000000", "1000001", str(10**18), "9" * 5000, "1e400", "-1e400"],
    "ts": ["0", "-1", "946684799999", "4102444800001", str(10**20)],
    "seq": ["-1", str(2**63), str(10**30)],
    "speed_mps": ["-0.5", "1e400"],
    "direction_deg": ["361", "-1", "1e400"],
}


@st.composite
def _base(draw, site: Site) -> dict:
    return draw(valid_reading(site))


def _set(name: str, value: Any) -> Callable[[list[dict]], None]:
    def edit(readings: list[dict]) -> None:
        readings[0][name] = value

    return edit


def _drop(name: str) -> Callable[[list[dict]], None]:
    def edit(readings: list[dict]) -> None:
        readings[0].pop(name, None)

    return edit


def _raw_field(name: str, raw: str) -> Callable[[bytes], bytes]:
    """Replace the reading's ``name`` by raw JSON text (or add it)."""

    def wrap(value: bytes) -> bytes:
        obj = json.loads(value)
        obj.pop(name, None)
        return encode(obj, [(name, raw)])

    return wrap


@st.composite
def hostile_message(draw, site: Site) -> Spec:
    """A message the worker must dead-letter, labelled with its class by construction."""
    zones = sorted(z.id for z in site.zones)
    r = draw(_base(site))
    case = draw(
        st.sampled_from(
            [
                "json/not-json", "json/truncated", "json/bad-utf8", "json/not-object",
                "json/deep", "json/nan", "json/trailing", "json/bom", "json/blank",
                "invalid/wrong-type", "invalid/missing", "invalid/range", "invalid/kind",
                "invalid/status", "invalid/no-measure", "invalid/id-length", "invalid/batch",
                "key/none", "key/mismatch", "key/bad-utf8", "key/batch-zones",
                "unknown-zone/reading", "unknown-zone/batch", "empty/value",
                "future/reading", "late/reading",
            ]
        )
    )  # fmt: skip
    fate = case.split("/")[0]
    spec = Spec(case, fate, [r])
    if case == "json/not-json":
        prefix = draw(st.sampled_from([b"{{", b"<", b"\x00", b"not json ", b"{'a': 1}", b"}"]))
        junk = draw(st.binary(max_size=200))
        spec.wrap = lambda _v: prefix + junk
    elif case == "json/truncated":
        spec.batch = draw(st.booleans())
        if spec.batch:
            spec.readings += [draw(valid_reading(site, r["zone_id"])) for _ in range(2)]
        f = draw(st.floats(0, 1, exclude_max=True))
        spec.wrap = lambda v: v[: max(1, min(len(v) - 1, int(len(v) * f)))]
    elif case == "json/bad-utf8":
        bad = draw(st.sampled_from(BAD_UTF8))
        where = draw(st.sampled_from(["source_id", "note", "reason"]))
        if where == "note":
            spec.extras = [("note", json.dumps(_BAD))]
        else:
            spec.edit = _set(where, _BAD) if where == "source_id" else _set_outage(_BAD)
        spec.wrap = lambda v: v.replace(_BAD.encode(), bad, 1)
    elif case == "json/not-object":
        raw = draw(
            st.sampled_from(
                ["[]", "[1,2]", '"main-square"', "0", "-3.5", "1e400", "9" * 5000, "null",
                 "true", "false", '"{\\"readings\\":[]}"', "READINGS"]
            )
        )  # fmt: skip
        if raw == "READINGS":  # an array of valid readings, not an object
            spec.wrap = lambda v: b"[" + v + b"]"
        else:
            spec.wrap = lambda _v: raw.encode()
    elif case == "json/deep":
        depth = draw(st.integers(1000, 50_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        spec.extras = [("x", opener * depth + "1" * (opener == '{"a":') + closer * depth)]
    elif case == "json/nan":
        field_ = draw(st.sampled_from(["count", "speed_mps", "ts", "x"]))
        spec.wrap = _raw_field(field_, draw(st.sampled_from(["NaN", "Infinity", "-Infinity"])))
    elif case == "json/trailing":
        tail = draw(st.sampled_from([b"x", b"}", b",", b"{}", b"[", b'"']))
        spec.wrap = lambda v: v + tail
    elif case == "json/bom":
        spec.wrap = lambda v: b"\xef\xbb\xbf" + v
    elif case == "json/blank":
        blank = draw(st.sampled_from([b" ", b"\n", b"\t\r\n "]))
        spec.wrap = lambda _v: blank
    elif case == "invalid/wrong-type":
        name = draw(st.sampled_from(sorted(_WRONG)))
        spec.edit = _set(name, draw(st.sampled_from(_WRONG[name])))
    elif case == "invalid/missing":
        spec.edit = _drop(draw(st.sampled_from(["source_id", "kind", "zone_id", "ts", "seq"])))
    elif case == "invalid/range":
        name = draw(st.sampled_from(sorted(_RANGE)))
        spec.wrap = _raw_field(name, draw(st.sampled_from(_RANGE[name])))
    elif case == "invalid/kind":
        spec.edit = _set("kind", draw(st.sampled_from(["drone", "Camera", "", "gates"])))
    elif case == "invalid/status":
        spec.edit = _set("status", draw(st.sampled_from(["down", "OK", ""])))
    elif case == "invalid/no-measure":
        what = draw(st.sampled_from(["ok", "offline", "degraded"]))

        def edit(readings: list[dict], what=what) -> None:
            for f in ("count", "entered", "exited", "reason"):
                readings[0].pop(f, None)
            readings[0]["status"] = what

        spec.edit = edit
    elif case == "invalid/id-length":
        name = draw(st.sampled_from(["source_id", "zone_id"]))
        value = draw(st.sampled_from(["", "z" * 129, "é" * 129]))
        spec.edit, spec.key = _set(name, value), r["zone_id"].encode()
    elif case == "invalid/batch":
        how = draw(st.sampled_from(["empty", "too-many", "not-list", "one-bad"]))
        spec.batch = True
        if how == "empty":
            spec.edit = lambda readings: readings.clear()
            spec.key = r["zone_id"].encode()
        elif how == "too-many":
            spec.readings = [dict(r) for _ in range(1001)]
        elif how == "not-list":
            not_list = draw(st.sampled_from(["x", 1, {}]))
            spec.wrap = lambda _v: encode({"v": 1, "readings": not_list})
        else:
            spec.readings += [draw(valid_reading(site, r["zone_id"])) for _ in range(3)]
            bad = draw(st.integers(0, 3))
            spec.edit = lambda readings: readings[bad].pop("seq")
    elif case == "key/none":
        spec.key = draw(st.sampled_from([None, b""]))
    elif case == "key/mismatch":
        spec.key = draw(
            st.sampled_from([z for z in zones if z != r["zone_id"]]).map(str.encode)
            | st.just(r["zone_id"].upper().encode())
            | st.just(r["zone_id"].encode() + b" ")
        )
    elif case == "key/bad-utf8":
        spec.key = r["zone_id"].encode() + draw(st.sampled_from(BAD_UTF8))
    elif case == "key/batch-zones":
        other = draw(st.sampled_from([z for z in zones if z != r["zone_id"]]))
        spec.batch = True
        spec.readings += [draw(valid_reading(site, other))]
    elif case.startswith("unknown-zone/"):
        name = draw(
            st.text(min_size=1, max_size=100).filter(lambda s: s not in site.zone_by_id)
            | st.sampled_from(["atlantis", "Main-Square", "main-square ", "main_square"])
        )
        if case == "unknown-zone/batch":  # the first reading is fine, the second is nowhere
            spec.batch = True
            spec.readings += [{**draw(valid_reading(site, r["zone_id"])), "zone_id": name}]
        else:
            r["zone_id"] = name
    elif case == "empty/value":
        empty = draw(st.sampled_from([b"", None]))  # None: a tombstone, which needs a key
        spec.key = draw(st.sampled_from([_ZONE, None])) if empty == b"" else _ZONE
        spec.wrap = lambda _v: empty
    elif case == "future/reading":
        spec.fate, r["_when"] = "valid", "future"
        r["_offset_ms"] = draw(st.integers(3_600_000, 48 * 3_600_000))
    elif case == "late/reading":
        spec.fate, r["_when"] = "valid", "late"
        r["_offset_ms"] = draw(st.integers(3_600_000, 30 * 86_400_000))
    if draw(st.integers(1, 40)) == 20 and fate in ("json", "invalid", "empty") and spec.key:
        spec.misplaced = True  # the key then names nothing: these classes do not read it
    return spec


def _set_outage(reason: str) -> Callable[[list[dict]], None]:
    def edit(readings: list[dict]) -> None:
        readings[0]["status"], readings[0]["reason"] = "offline", reason

    return edit


BIG_CASES = (
    "big/not-json", "big/truncated", "big/invalid", "big/key-mismatch", "big/huge-key",
    "big/over-limit", "big/over-limit-misplaced", "big/at-limit-misplaced",
)  # fmt: skip


@st.composite
def big_message(draw, site: Site) -> Callable[[str], Spec]:
    """The parameters of a big message (cheap to draw in every example); the message, of one
    of :data:`BIG_CASES`, is built only when used: ~750 KB to 950 KB, under the 1 MB size
    check, so parsed, and malformed (its dead letter must be cut to fit); over 1 MB
    (``size``); a 0.4 MB key on a 0.5 MB value; just under 1 MB in the wrong partition."""
    r = draw(valid_reading(site))
    size = draw(st.integers(750_000, 950_000))
    pattern = draw(st.binary(min_size=1, max_size=64))
    other_zone = draw(st.sampled_from(sorted(z.id for z in site.zones if z.id != r["zone_id"])))
    over = draw(st.integers(SIZE_LIMIT + 1, SIZE_LIMIT + 30_000))
    at = draw(st.integers(SIZE_LIMIT - 500, SIZE_LIMIT))
    key_size = draw(st.integers(400_000, 450_000))

    def build(case: str) -> Spec:
        pad = "a" * size  # an unknown string field: the reading stays well-formed
        spec = Spec(case, "json", [dict(r)], extras=[("pad", json.dumps(pad))])
        if case == "big/not-json":
            blob = (b"{{" + pattern * (size // len(pattern) + 1))[:size]
            spec.wrap = lambda _v: blob
        elif case == "big/truncated":
            spec.wrap = lambda v: v[: size - 1]
        elif case == "big/invalid":
            spec.fate, spec.edit = "invalid", _set("count", -1)
        elif case == "big/key-mismatch":
            spec.fate, spec.key = "key", other_zone.encode()
        elif case.startswith("big/over-limit"):
            spec.fate, spec.extras = "size", [("pad", json.dumps("a" * over))]
            spec.misplaced = case.endswith("misplaced")
        elif case == "big/at-limit-misplaced":  # just under the size check: re-routed, read
            blob = (b"{{" + pattern * (at // len(pattern) + 1))[:at]
            spec.wrap, spec.misplaced = (lambda _v: blob), True
        else:  # big/huge-key: a 0.4 MB key, a 0.5 MB value; in base64 over 1 MB together
            spec.key = (pattern * (key_size // len(pattern) + 1))[:key_size]
            spec.extras = [("pad", json.dumps("a" * (940_000 - key_size)))]
            spec.wrap = lambda v: b"{{" + v  # not JSON
        return spec

    return build


def draw_plan(site: Site, hostile: int, big: int, seed: int, valid_ratio: float = 0.5) -> Plan:
    """Draw a plan of ``hostile`` hostile messages (``big`` of them 0.75-1 MB, spread evenly),
    interleaved with about ``valid_ratio`` as many valid ones (and a few re-sent), after one
    warm-up reading per zone. Deterministic for a given ``seed``."""
    plan = Plan(site)
    plan.warm_up()
    rounds = 0
    while plan.hostile < hostile:  # hypothesis may run fewer examples than asked: go on
        _draw_chunks(plan, site, hostile, big, valid_ratio, seed + rounds)
        rounds += 1
    return plan


def _draw_chunks(plan: Plan, site: Site, hostile: int, big: int, ratio: float, seed: int) -> None:
    # At most ROUND examples per run: hypothesis remembers every example of a run, and each
    # new one costs more than the last.
    examples = max(1, min(ROUND, -(-(hostile - plan.hostile) // CHUNK)))

    @settings(
        max_examples=examples,
        phases=[Phase.generate],  # no shrinking: see the module's docstring
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(seed)
    @given(data=st.data())
    def chunk(data) -> None:
        # The same draws in every example (hypothesis insists); what is kept depends on the plan.
        specs = data.draw(st.lists(hostile_message(site), min_size=CHUNK, max_size=CHUNK))
        big_spec = data.draw(big_message(site))
        n_valid = round(CHUNK * ratio)
        valid = data.draw(st.lists(valid_message(site), min_size=n_valid, max_size=n_valid))
        resends = data.draw(st.lists(st.floats(0, 1), max_size=2))
        order = data.draw(st.permutations(range(CHUNK + n_valid + len(resends))))
        n = min(CHUNK, hostile - plan.hostile)
        if n <= 0:
            return
        if plan.cases_big() < big and plan.hostile >= plan.cases_big() * hostile // big:
            # the j-th big message once j/big of the hostile ones are out: spread evenly
            specs[n - 1] = big_spec(BIG_CASES[plan.cases_big() % len(BIG_CASES)])
        specs = specs[:n] + [None] * (CHUNK - n)
        specs += valid[: round(n * ratio)] + [None] * (n_valid - round(n * ratio))
        specs += [Spec("valid/resend", "resend", resend_at=f) for f in resends]
        for i in order:
            if specs[i] is not None:
                plan.add(specs[i])

    chunk()


# --- checking dead letters --------------------------------------------------------------------


def check_dead_letter(msg: Message, record: dict) -> list[str]:
    """What is wrong with ``record`` as the message-level dead letter of ``msg`` (empty: fine)."""
    problems = []
    reason = record.get("reason") or ""
    if not reason.startswith(REASON_PREFIX[msg.fate]):
        problems.append(f"reason {reason[:120]!r} is not of class {msg.fate}")
    original = msg.value or b""
    kept = base64.b64decode(record["value_b64"])
    if kept != original[:MAX_KEPT]:
        problems.append(f"value_b64 is not the original's first {MAX_KEPT} bytes")
    if record.get("value_bytes") != len(original):
        problems.append(f"value_bytes {record.get('value_bytes')} != {len(original)}")
    if record.get("truncated") != (len(original) > MAX_KEPT):
        problems.append(f"truncated is {record.get('truncated')} for {len(original)} bytes")
    want_key = base64.b64encode(msg.key[:KEY_KEPT]).decode() if msg.key else None
    if record.get("key_b64") != want_key:
        problems.append("key_b64 is not the original key")
    return problems


# --- the live run -----------------------------------------------------------------------------
