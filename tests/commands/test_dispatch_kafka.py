"""``crowdsafe dispatch`` and ``crowdsafe incidents`` on the real broker, against incident
records produced here as the worker writes them (keyed by zone id, murmur2); and, at the end,
with a real worker: an acknowledgement from ``kcat`` reaches ``crowd.audit``.

Every test has its own topics (a Sandbox, with its own acks, silences, audit, CAP and route
topics) and its own consumer groups.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from kafka import KafkaProducer

from streams.config.kafka import client_kwargs
from streams.dispatch.samples import encode, incident
from streams.ops.partitioning import partition_of
from streams.schema.incident import Ack, Silence
from streams.testing import IMPORT_ROOT, Sandbox

pytestmark = pytest.mark.kafka

T0 = 1_746_093_600_000  # 2025-05-01 18:00 CST
MIN = 60_000
UNDERPASS = "Pedestrian underpass under Huanshi West Road"  # the site's name of zone underpass


@pytest.fixture
def box(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Sandbox]:
    sfx = uuid.uuid4().hex[:8]
    b = Sandbox(
        kafka_bootstrap,
        tmp_path,
        extra_env={
            "CROWDSAFE_ACKS_TOPIC": f"t-{sfx}.acks",
            "CROWDSAFE_SILENCES_TOPIC": f"t-{sfx}.silences",
            "CROWDSAFE_AUDIT_TOPIC": f"t-{sfx}.audit",
            "CROWDSAFE_CAP_TOPIC": f"t-{sfx}.cap",
            "CROWDSAFE_DISPATCH_TOPIC_PREFIX": f"t-{sfx}.dispatch.",
        },
    )
    b.ensure_topics()
    try:
        yield b
    finally:
        b.stop_worker()  # if a test started one


def _publish(box: Sandbox, topic: str, records) -> None:
    """Records keyed by zone id with the default (murmur2) partitioner, as the worker does."""
    p = KafkaProducer(**client_kwargs(box.settings()), acks="all")
    try:
        for rec in records:
            value = rec if isinstance(rec, bytes | str) else encode(rec)
            key = rec.zone_id if hasattr(rec, "zone_id") else json.loads(value)["zone_id"]
            value = value.encode() if isinstance(value, str) else value
            p.send(topic, key=key.encode(), value=value).get(30)
    finally:
        p.close()


def _console(box: Sandbox, *args: str, stdin: str = "", idle: float = 6) -> tuple[str, str]:
    """``crowdsafe dispatch *args`` until idle, with ``stdin`` piped in; (stdout, stderr).
    ``idle`` counts from the group's assignment: on a loaded machine the first fetch after it
    can take seconds (2 s was once too short in CI)."""
    out = subprocess.run(
        [sys.executable, "-m", "streams.cli", "dispatch", *args, "--idle-timeout", str(idle)],
        input=stdin,
        env=box.env,
        cwd=IMPORT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def _police(box: Sandbox) -> str:
    return box.settings().dispatch_topic("police")


def _story(route: bool = True) -> list:
    """Three incidents as the police route saw them (``route``: else as ``crowd.alerts`` has
    them): main square's resolved, east plaza's (warning, density) acknowledged, the
    underpass's (forecast, density) critical. Underpass and west plaza share partition 1."""
    sq, ep, up = T0, T0 + 5 * MIN, T0 + 10 * MIN
    crowd = dict(route="police") if route else dict(routes=["police"])
    return [
        incident("main-square", sq, 1, "raised", **crowd),
        incident("east-plaza", ep, 1, "raised", severity="warning", **crowd),
        incident("main-square", sq, 2, "acknowledged", state="acknowledged",
                 acknowledged_by="li.wei", **crowd),
        incident("underpass", up, 1, "raised", severity="warning",
                 kinds=("forecast", "density"), **crowd),
        incident("east-plaza", ep, 2, "acknowledged", severity="warning", state="acknowledged",
                 acknowledged_by="chen", **crowd),
        incident("main-square", sq, 3, "cleared", state="cleared", **crowd),
        incident("underpass", up, 2, "severity-up", kinds=("forecast", "density"),
                 minutes_to_critical=4.0, **crowd),
        incident("main-square", sq, 4, "resolved", state="resolved", resolved_by="li.wei",
                 **crowd),
    ]  # fmt: skip


def _transitions(stdout: str) -> list[str]:
    """(handle, transition) of each transition printed (the first of its two lines)."""
    return [" ".join(line.split()[i] for i in (0, 5)) for line in stdout.splitlines()
            if line.startswith("#")]  # fmt: skip


def test_a_new_console_shows_the_open_incidents_once_then_follows_without_repeats(box):
    _publish(box, _police(box), _story())
    group = f"dispatch-test-{uuid.uuid4().hex[:6]}"

    out, err = _console(box, "--route", "police", "--group", group)
    assert "2 open incident(s)" in out
    # newest record of each open incident, oldest incident first; nothing of main square
    assert _transitions(out) == ["#1 acknowledged", "#2 severity-up"], out
    assert "East plaza" in out and "Underpass" in out and "Main square" not in out
    assert "2 transition(s) handled" in err
    assert all(len(line) <= 80 for line in out.splitlines())

    # later transitions, one of them delivered twice; a restart shows each once, in order
    later = [
        incident("underpass", T0 + 10 * MIN, 3, "acknowledged", state="acknowledged",
                 acknowledged_by="li.wei", kinds=("forecast", "density"), route="police"),
        incident("west-plaza", T0 + 30 * MIN, 1, "raised", route="police"),
    ]  # fmt: skip
    _publish(box, _police(box), [later[0], later[0], later[1]])
    out, _ = _console(box, "--route", "police", "--group", group, "--max", "1")
    assert "open incident" not in out  # a known group: no summary
    assert _transitions(out) == ["#1 acknowledged"], out
    out, _ = _console(box, "--route", "police", "--group", group)
    assert _transitions(out) == ["#1 raised"] and "West plaza" in out, out  # the duplicate: gone
    out, _ = _console(box, "--route", "police", "--group", group)
    assert _transitions(out) == []  # all handled and committed: nothing repeats

    # a restarted console still knows the open incidents (list), from the history it skipped
    out, _ = _console(box, "--route", "police", "--group", group, stdin="list\n")
    assert "-- 3 open incident(s) --" in out and "West plaza" in out


def test_filters_and_json(box):
    _publish(box, _police(box), _story())

    def new() -> list[str]:  # a new console
        return ["--route", "police", "--group", f"dispatch-t-{uuid.uuid4().hex[:8]}"]

    out, _ = _console(box, *new(), "--zone", "east-plaza")
    assert _transitions(out) == ["#1 acknowledged"] and "Underpass" not in out
    out, _ = _console(box, *new(), "--zone", UNDERPASS, "--zone", "main-square")
    assert _transitions(out) == ["#1 severity-up"] and "East plaza" not in out
    out, _ = _console(box, *new(), "--severity", "critical")
    assert _transitions(out) == ["#1 severity-up"] and "Underpass" in out
    out, _ = _console(box, *new(), "--kind", "forecast")
    assert _transitions(out) == ["#1 severity-up"]
    out, _ = _console(box, *new(), "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["zone_id"], r["seq"], r["route"]) for r in records] == [
        ("east-plaza", 2, "police"),
        ("underpass", 2, "police"),
    ]
    # every record the topic holds, in each zone's order, for a new group --from earliest
    out, _ = _console(box, *new(), "--from", "earliest", "--json")
    assert len(out.splitlines()) == len(_story())


def test_ack_typed_at_the_console_goes_to_the_acks_topic_keyed_by_zone(box):
    _publish(box, _police(box), _story())
    group = f"dispatch-t-{uuid.uuid4().hex[:6]}"
    stdin = "resolve 1\nshow 2\nack 1 on my way\nack 7\n"

    out, _ = _console(box, "--route", "police", "--group", group + "x", stdin="ack 1\n")
    assert "ack needs your name: restart with --as NAME" in out

    out, _ = _console(box, "--route", "police", "--group", group, "--as", "li.wei", stdin=stdin)
    assert "#1 resolution sent as li.wei" in out
    assert "#1 is acknowledged, not cleared: the worker refuses it" in out
    assert "members (2):" in out and "underpass/forecast/" in out  # show 2
    assert "#1 acknowledgement sent as li.wei" in out
    assert "? no incident 7 in this console" in out

    acks_topic = box.topic("acks")
    records = box.consume(acks_topic, until=lambda r: len(r) >= 2, timeout=60)
    assert len(records) == 2
    for r in records:
        assert r.key == b"east-plaza" and r.partition == partition_of(b"east-plaza", 2)
    acks = sorted((msgspec.json.decode(r.value, type=Ack) for r in records), key=lambda a: a.ts)
    assert [(a.action, a.by, a.note) for a in acks] == [
        ("resolve", "li.wei", None),
        ("ack", "li.wei", "on my way"),
    ]
    assert {a.incident_id for a in acks} == {f"east-plaza/crowd/{T0 + 5 * MIN}"}


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_acknowledges_into_the_partition_of_its_zone(box):
    ack = {"v": 1, "incident_id": f"underpass/crowd/{T0}", "by": "kcat-user",
           "ts": T0 + MIN, "action": "ack", "note": "seen on camera"}  # fmt: skip
    _kcat_ack(box, ack)
    records = box.consume(box.topic("acks"), until=lambda r: len(r) >= 1, timeout=60)
    assert [(r.key, r.partition) for r in records] == [
        (b"underpass", partition_of(b"underpass", 2))
    ]
    assert msgspec.json.decode(records[0].value, type=Ack).by == "kcat-user"


def _kcat_ack(box: Sandbox, ack: dict) -> None:
    zone = ack["incident_id"].split("/")[0]
    subprocess.run(
        ["kcat", "-P", "-b", box.bootstrap, "-t", box.topic("acks"), "-k", zone,
         "-X", "partitioner=murmur2_random"],
        input=json.dumps(ack) + "\n", text=True, check=True, timeout=60,
    )  # fmt: skip


def test_incidents_commands_ack_silence_list_and_export(box, tmp_path):
    alerts_topic = box.topic("alerts")
    _publish(box, alerts_topic, _story(route=False))

    out = box.cli("incidents", "list")
    assert out.returncode == 0, out.stderr
    assert (
        "2 open incident(s)" in out.stdout and f"id east-plaza/crowd/{T0 + 5 * MIN}" in out.stdout
    )

    out = box.cli("incidents", "ack", f"underpass/crowd/{T0 + 10 * MIN}", "--as", "chen",
                  "--note", "going")  # fmt: skip
    assert out.returncode == 0 and "acknowledgement of underpass" in out.stdout, out.stderr
    out = box.cli("incidents", "silence", "--zone", "underpass", "--for", "2h", "--reason",
                  "drill", "--as", "chen")  # fmt: skip
    assert out.returncode == 0, out.stderr
    silence_id = out.stdout.split()[1]
    out = box.cli("incidents", "silence", "--expire", silence_id, "--zone", "underpass",
                  "--as", "chen")  # fmt: skip
    assert out.returncode == 0, out.stderr
    bad = box.cli("incidents", "silence", "--zone", "nowhere", "--for", "2h", "--reason", "x",
                  "--as", "chen")  # fmt: skip
    assert bad.returncode == 2 and "unknown zone 'nowhere'" in bad.stderr

    ack = box.consume(box.topic("acks"), until=lambda r: len(r) >= 1, timeout=60)[0]
    assert ack.key == b"underpass" and msgspec.json.decode(ack.value, type=Ack).note == "going"
    silences = box.consume(box.topic("silences"), until=lambda r: len(r) >= 2, timeout=60)
    made, expired = (msgspec.json.decode(r.value, type=Silence) for r in silences)
    assert made.ends_at - made.ts == 7_200_000 and made.reason == "drill"
    assert (expired.silence_id, expired.action) == (made.silence_id, "expire")
    assert {r.key for r in silences} == {b"underpass"}

    # the audit trail: the worker's records, one of them delivered twice
    audit = [
        _audit(T0, "transition", "main-square", detail="raised: open, critical, tier grid"),
        _audit(T0, "route", "main-square", route="police", detail="sent to police"),
        _audit(T0 + MIN, "acknowledge", "main-square", actor="li.wei", reason="on my way"),
        _audit(T0 + MIN, "acknowledge", "main-square", actor="li.wei", reason="on my way"),
        _audit(T0 + 16 * 60 * MIN, "escalate", "underpass", incident=f"underpass/crowd/{T0}"),
    ]
    _publish(box, box.topic("audit"), audit)

    csv_out = tmp_path / "timeline.csv"
    out = box.cli("incidents", "export", "--out", str(csv_out))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    by_incident: dict[str, list] = {}
    for r in rows:
        by_incident.setdefault(r["incident_id"], []).append(
            (r["time"][11:16], r["action"], r["actor"], r["source"])
        )
    assert by_incident[f"main-square/crowd/{T0}"] == [  # told by the audit
        ("18:00", "transition", "crowdsafe", "audit"),
        ("18:00", "route", "crowdsafe", "audit"),
        ("18:01", "acknowledge", "li.wei", "audit"),  # once, though delivered twice
    ]
    assert by_incident[f"east-plaza/crowd/{T0 + 5 * MIN}"] == [  # by crowd.alerts alone
        ("18:05", "transition", "crowdsafe", "alerts"),
        ("18:06", "transition", "chen", "alerts"),  # acknowledged
    ]
    assert rows[0]["time"] == "2025-05-01 18:00:00 CST" and len(by_incident) == 4

    # a window in the site's time zone: 18:01 up to 18:06 (exclusive), then one whole day
    out = box.cli("incidents", "export", "--format", "json", "--from", "2025-05-01T18:01",
                  "--to", "2025-05-01T18:06")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["timezone"] == "Asia/Shanghai" and doc["from"] == "2025-05-01 18:01:00 CST"
    found = {i["incident_id"]: [e["action"] for e in i["events"]] for i in doc["incidents"]}
    assert found == {
        f"main-square/crowd/{T0}": ["acknowledge"],
        f"east-plaza/crowd/{T0 + 5 * MIN}": ["transition"],
    }
    out = box.cli("incidents", "export", "--format", "json", "--from", "2025-05-02",
                  "--to", "2025-05-02")  # fmt: skip
    doc = json.loads(out.stdout)
    assert [e["action"] for i in doc["incidents"] for e in i["events"]] == ["escalate"]


def _audit(ts: int, action: str, zone: str, incident: str | None = None, **kw) -> str:
    rec = {
        "v": 1, "ts": ts, "actor": "crowdsafe", "action": action, "zone_id": zone,
        "incident_id": incident or f"{zone}/crowd/{T0}", "silence_id": None, "route": None,
        "detail": action, "reason": None,
    }  # fmt: skip
    return json.dumps({**rec, **kw})


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_with_a_worker_a_kcat_acknowledgement_reaches_the_audit_and_the_console(box):
    """End to end: a surge goes critical, the police console shows it; ``kcat`` acknowledges;
    the worker audits it and the console shows who acknowledged."""
    pytest.importorskip("streams.incidents", reason="the worker's incident engine is not here")
    box.start_worker()
    box.simulate_surge_until_now()  # into the surge's hold: critical
    police = box.consume(
        _police(box),
        until=lambda rs: any(json.loads(r.value)["severity"] == "critical" for r in rs),
        timeout=120,
    )
    incident_id = json.loads(police[-1].value)["incident_id"]
    group = f"dispatch-t-{uuid.uuid4().hex[:8]}"
    out, _ = _console(box, "--route", "police", "--group", group)
    assert "1 open incident(s)" in out and "NOT ACKED" in out, out

    now = int(time.time() * 1000)
    _kcat_ack(box, {"v": 1, "incident_id": incident_id, "by": "kcat-user", "ts": now,
                    "action": "ack", "note": "from kcat"})  # fmt: skip

    def acknowledged(records: list) -> bool:
        return any(
            json.loads(r.value)["action"] == "acknowledge"
            and json.loads(r.value)["actor"] == "kcat-user"
            for r in records
        )

    audit = [json.loads(r.value) for r in box.consume(box.topic("audit"), acknowledged)]
    ack = next(a for a in audit if a["action"] == "acknowledge")
    assert (ack["incident_id"], ack["reason"]) == (incident_id, "from kcat"), audit
    box.consume(_police(box), lambda rs: any(b"kcat-user" in r.value for r in rs))
    out, _ = _console(box, "--route", "police", "--group", group)
    assert "acknowledged" in out and "ack kcat-user" in out, out
