"""Access control on the real broker: a second, secure local broker (SASL_SSL with SCRAM-SHA-512,
StandardAuthorizer ACLs) on free ports with its own state under tmp, certificates made here.

One worker runs as the worker principal; an edge principal publishes a surge; dispatch prints
the alert. Then: a forged alert from the edge is refused, clients without or with wrong
credentials are refused, and no password shows up in logs, /metrics or dead letters.
``crowdsafe replay`` and ``crowdsafe camera`` publish as the edge principal into an app of
their own, and fail in one line without credentials.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from streams.config.kafka import client_kwargs
from streams.config.paths import bundled_site
from streams.config.settings import Settings
from streams.ops import kafka_local, secure_broker
from streams.testing import Sandbox, alert_transitions, free_port

pytestmark = pytest.mark.kafka

USERS = ("worker", "edge", "dispatch", "operator")
SURGE_ZONE = "entrance-east"


@dataclass
class SecureCluster:
    config: kafka_local.BrokerConfig
    tls: secure_broker.TlsFiles
    passwords: dict[str, str]  # user -> password, admin included
    password_files: dict[str, Path]

    def env(self, user: str) -> dict[str, str]:
        return secure_broker.client_env(
            self.config.bootstrap, self.tls, user, self.password_files[user]
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    root = tmp_path_factory.mktemp("kafka-secure")
    tls = secure_broker.generate_tls(root / "tls")
    files = {
        u: secure_broker.write_password(root / "secrets" / f"{u}.pw") for u in ("admin", *USERS)
    }
    passwords = {u: f.read_text().strip() for u, f in files.items()}
    security = secure_broker.BrokerSecurity(tls, files["admin"])
    config = kafka_local.BrokerConfig(
        port=free_port(),
        controller_port=free_port(),
        state_dir=root / "kafka",
        partitions=2,
        security=security,
    )
    kafka_local.up(config, timeout_s=120, log=lambda _: None)  # stops the JVM if it fails
    try:
        admin = kafka_local.admin_client_kwargs(config)
        secure_broker.upsert_scram_users(admin, {u: passwords[u] for u in USERS})
        yield SecureCluster(config, tls, passwords, files)
    finally:
        kafka_local.down(config, grace_s=20, log=lambda _: None)


@pytest.fixture(scope="module")
def run(cluster: SecureCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A worker as ``worker`` that has processed a surge published by ``edge``, and one
    malformed reading (a dead letter), with the ACLs of streams/ops/acls.py."""
    box = Sandbox(
        cluster.config.bootstrap, tmp_path_factory.mktemp("secure-run"), cluster.env("worker")
    )
    # As the admin: the app's topics (the worker has no right to create them), then the ACLs.
    acls = box.cli(
        "kafka", "acls", "--worker", "worker", "--edge", "edge", "--dispatch", "dispatch",
        "--operator", "operator",
        env=cluster.env("admin"),
    )  # fmt: skip
    assert acls.returncode == 0, acls.stderr
    assert "ACLs in place" in acls.stdout
    try:
        box.start_worker(timeout=90)
        start = datetime.now(UTC) - timedelta(seconds=700)
        result = box.cli(
            "simulate", "--scenario", "surge", "--speed", "0", "--quiet",
            "--duration", "700", "--start", start.isoformat(),
            env=cluster.env("edge"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        with _producer(box.settings(cluster.env("edge"))) as edge:
            edge.send(box.topic("readings"), key=SURGE_ZONE.encode(), value=b"{not json").get(15)
        yield box
    finally:
        box.stop_worker()


class _producer:
    def __init__(self, settings: Settings, **extra) -> None:
        self.p = KafkaProducer(**client_kwargs(settings), acks="all", **extra)

    def __enter__(self) -> KafkaProducer:
        return self.p

    def __exit__(self, *exc: object) -> None:
        self.p.close(timeout=5)


def _read(run: Sandbox, env: dict[str, str], topic: str, until, timeout: float = 60) -> list:
    """Values of ``topic`` from the start, read with ``env``'s credentials, until
    ``until(values)``."""
    records = run.consume(topic, lambda rs: until([r.value for r in rs]), timeout, env=env)
    return [r.value for r in records]


def _alerts(values: list[bytes]) -> list[dict]:
    return [json.loads(v) for v in values]


def _has_critical_density(values: list[bytes]) -> bool:
    return any(
        a["zone_id"] == SURGE_ZONE and a["kind"] == "density" and a["severity"] == "critical"
        for a in alert_transitions(_alerts(values))
    )


def test_authorised_clients_work_end_to_end(cluster: SecureCluster, run: Sandbox) -> None:
    admin = cluster.env("admin")
    records = _alerts(_read(run, admin, run.topic("alerts"), _has_critical_density, timeout=90))
    density = [a for a in alert_transitions(records) if a["kind"] == "density"]
    assert density and density[0]["state"] == "raised", records
    assert all(r["zone_id"] == SURGE_ZONE for r in records)

    states = _read(run, admin, run.topic("zone-state"), until=lambda v: len(v) >= 1)
    assert SURGE_ZONE in {json.loads(v)["zone_id"] for v in states}

    # the police console, as the dispatch principal, in a group its ACLs allow: the open
    # critical incident, read from the police route
    result = run.cli(
        "dispatch", "--route", "police", "--group", f"dispatch-{uuid.uuid4().hex[:6]}",
        "--json", "--idle-timeout", "15", env=cluster.env("dispatch"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["incident_id"], r["route"]) for r in shown} == {
        (records[0]["incident_id"], "police")
    }
    assert "transition(s) handled" in result.stderr


def test_the_command_centre_runs_as_the_operator_principal(
    cluster: SecureCluster, run: Sandbox
) -> None:
    """``crowdsafe centre`` over SASL_SSL as ``operator``: it reads every zone and the open
    incident, and an acknowledgement made on it reaches the audit trail with the user's name."""
    admin = cluster.env("admin")
    incident = _alerts(_read(run, admin, run.topic("alerts"), _has_critical_density, 90))[0]
    token = run.add_user("officer-zhou", "operator")
    run.start_centre(env=cluster.env("operator"), timeout=90)
    try:
        zones = run.centre_get("/api/zones", token)["zones"]
        assert any(z["zone_id"] == SURGE_ZONE and z["density"] for z in zones)
        open_ids = {i["incident_id"] for i in run.centre_get("/api/incidents", token)["incidents"]}
        assert incident["incident_id"] in open_ids
        status, _ = run.centre_post(
            "/api/ack", {"incident_id": incident["incident_id"], "note": "via the centre"}, token
        )
        assert status == 202
        audit = _read(run, admin, run.topic("audit"), until=lambda v: any(
            a["actor"] == "officer-zhou" for a in _alerts(v)), timeout=60)  # fmt: skip
        assert any(a["actor"] == "officer-zhou" for a in _alerts(audit))
        log = (run.tmp / f"centre-{run.centre_starts}.log").read_text()
        for password in cluster.passwords.values():
            assert password not in log
    finally:
        run.stop_centre()


def _refused(settings: Settings, topic: str, value: dict) -> None:
    with _producer(settings, max_block_ms=15_000, enable_idempotence=False) as producer:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, key=SURGE_ZONE.encode(), value=json.dumps(value).encode()).get(15)


def test_dispatch_acknowledges_operators_silence_and_nobody_else_does_either(
    cluster: SecureCluster, run: Sandbox
) -> None:
    admin = cluster.env("admin")
    incident = _alerts(_read(run, admin, run.topic("alerts"), _has_critical_density, 90))[0]
    incident_id = incident["incident_id"]
    now = int(time.time() * 1000)
    ack = {"v": 1, "incident_id": incident_id, "by": "x", "ts": now, "action": "ack"}
    silence = {"v": 1, "silence_id": "s", "zone_id": SURGE_ZONE, "by": "x", "reason": "r",
               "ts": now, "ends_at": now + 60_000}  # fmt: skip
    _refused(run.settings(cluster.env("edge")), run.topic("acks"), ack)  # a camera box
    _refused(run.settings(cluster.env("edge")), run.topic("silences"), silence)
    _refused(run.settings(cluster.env("dispatch")), run.topic("silences"), silence)

    acked = run.cli(
        "incidents", "ack", incident_id, "--as", "duty-officer-1", env=cluster.env("dispatch")
    )
    assert acked.returncode == 0, acked.stderr
    silenced = run.cli(
        "incidents", "silence", "--zone", "east-plaza", "--for", "30m", "--reason",
        "planned event", "--as", "supervisor-chen", env=cluster.env("operator"),
    )  # fmt: skip
    assert silenced.returncode == 0, silenced.stderr

    def both(values: list[bytes]) -> bool:
        actions = {(a["action"], a["actor"]) for a in _alerts(values)}
        return {("acknowledge", "duty-officer-1"), ("silence", "supervisor-chen")} <= actions

    audit = _alerts(_read(run, admin, run.topic("audit"), until=both, timeout=60))
    assert both([json.dumps(a).encode() for a in audit])
    # the dispatcher reads the audit trail too
    again = _read(run, cluster.env("dispatch"), run.topic("audit"), until=both, timeout=60)
    assert both(again)


def test_a_forged_alert_from_an_edge_principal_is_refused(
    cluster: SecureCluster, run: Sandbox
) -> None:
    forged = {**_a_real_alert(cluster, run), "state": "cleared", "message": "all clear (forged)"}
    edge = run.settings(cluster.env("edge"))
    with _producer(edge, max_block_ms=15_000) as producer:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(run.topic("alerts"), key=SURGE_ZONE.encode(), value=json.dumps(forged).encode()).get(15)  # fmt: skip
        with pytest.raises(TopicAuthorizationFailedError):  # nor a zone state
            producer.send(run.topic("zone-state"), key=SURGE_ZONE.encode(), value=b"{}").get(15)
    # dispatch may read alerts, not write them (a non-idempotent producer: an idempotent one
    # is already refused its producer id, having Write on no topic at all)
    dispatch = run.settings(cluster.env("dispatch"))
    with _producer(dispatch, max_block_ms=15_000, enable_idempotence=False) as producer:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(run.topic("alerts"), value=json.dumps(forged).encode()).get(15)

    # what dispatch prints is still only the worker's story
    result = run.cli(
        "dispatch", "--group", f"dispatch-{uuid.uuid4().hex[:6]}", "--json",
        "--idle-timeout", "5", env=cluster.env("dispatch"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed and "all clear (forged)" not in result.stdout


def _a_real_alert(cluster: SecureCluster, run: Sandbox) -> dict:
    admin = cluster.env("admin")
    return _alerts(_read(run, admin, run.topic("alerts"), _has_critical_density, timeout=90))[0]


def test_an_authenticated_user_without_acls_can_do_nothing(
    cluster: SecureCluster, run: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """The authoriser denies what no ACL allows: the edge may not even read the alerts.
    (kafka-python's consumer does not raise on it: it logs the refusal and gets no records.)"""
    topic = run.topic("alerts")
    refused = f"Topic {topic} is not authorized"
    consumer = KafkaConsumer(
        **client_kwargs(run.settings(cluster.env("edge"))), enable_auto_commit=False
    )
    got = []
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and refused not in caplog.text:
            got += [r for batch in consumer.poll(timeout_ms=500).values() for r in batch]
    finally:
        consumer.close()
    assert refused in caplog.text
    assert got == []


def _auth_failures(cluster: SecureCluster) -> int:
    """SCRAM logins the broker refused so far (its server.log, INFO from the socket server)."""
    text = cluster.config.server_log.read_text(errors="replace")
    return text.count("Authentication failed during authentication due to invalid credentials")


def _refused_within(kwargs: dict) -> None:
    # kafka-python retries a refused login until its bootstrap timeout, then gives up.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaProducer(**kwargs, bootstrap_timeout_ms=5000).close()


def test_clients_without_or_with_wrong_credentials_are_refused(
    cluster: SecureCluster, run: Sandbox, tmp_path: Path
) -> None:
    # No credentials at all: PLAINTEXT to the SASL_SSL port never gets a broker.
    _refused_within({"bootstrap_servers": cluster.config.bootstrap})
    # TLS but no SASL.
    tls_only = {**cluster.env("edge"), "KAFKA_SECURITY_PROTOCOL": "SSL"}
    _refused_within(client_kwargs(run.settings(tls_only)))

    # TLS fine, wrong password; then an unknown user: the broker refuses the SCRAM login.
    wrong = secure_broker.write_password(tmp_path / "wrong.pw", "not-the-password")
    bad = {**cluster.env("edge"), "KAFKA_SASL_PASSWORD_FILE": str(wrong)}
    stranger = {**cluster.env("edge"), "KAFKA_SASL_USERNAME": "mallory"}
    for env in (bad, stranger):
        before = _auth_failures(cluster)
        _refused_within(client_kwargs(run.settings(env)))
        assert _auth_failures(cluster) > before

    # The CLI says so in one line and exits 1, without echoing the password it tried.
    result = run.cli(
        "dispatch", "--max", "1", "--idle-timeout", "5",
        env={**bad, "CROWDSAFE_KAFKA_CONNECT_TIMEOUT_S": "5"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Unable to bootstrap" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr


def test_credentials_never_appear_in_logs_metrics_or_dead_letters(
    cluster: SecureCluster, run: Sandbox
) -> None:
    admin = cluster.env("admin")
    records = [json.loads(v) for v in _read(run, admin, run.topic("deadletter"), lambda v: len(v))]
    # the malformed reading was dead-lettered, its bytes kept in base64
    assert [base64.b64decode(r["value_b64"]) for r in records] == [b"{not json"]
    dead = b"".join(json.dumps(r).encode() + base64.b64decode(r["value_b64"]) for r in records)

    with urllib.request.urlopen(f"http://127.0.0.1:{run.web_port}/metrics", timeout=10) as r:
        metrics = r.read()
    assert b"crowdsafe" in metrics

    worker_log = (run.tmp / f"worker-{run.starts}.log").read_bytes()
    assert b"Worker ready" in worker_log
    broker_logs = b"".join(p.read_bytes() for p in cluster.config.log_dir.glob("*"))
    assert b"Replayed UserScramCredentialRecord" in broker_logs  # the log we search is real
    for user, password in cluster.passwords.items():
        secret = password.encode()
        for name, text in [
            ("worker log", worker_log),
            ("/metrics", metrics),
            ("dead letters", dead),
            ("broker logs", broker_logs),
        ]:
            assert secret not in text, f"{user}'s password in the {name}"
    # The broker's own config holds the admin's password: readable by its owner only.
    assert os.stat(cluster.config.properties_file).st_mode & 0o077 == 0


PETS_FRAMES = Path(__file__).resolve().parents[3] / "shared/data/vision/pets09-s2l1/img1"
REPLAY_ZONE = "west-plaza"


@pytest.fixture(scope="module")
def edge_app(cluster: SecureCluster, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """An app of its own for history and recordings (what ``crowdsafe replay`` asks for: its
    own app id and topics, not a live zone's past): its topics and the ``edge`` ACLs made by
    the admin. The sandbox itself holds no credentials; each call passes a principal's."""
    box = Sandbox(cluster.config.bootstrap, tmp_path_factory.mktemp("secure-edge"))
    acls = box.cli("kafka", "acls", "--edge", "edge", env=cluster.env("admin"))
    assert acls.returncode == 0, acls.stderr
    return box


def _readings_of(box: Sandbox, cluster: SecureCluster, source_id: str, n: int) -> list[dict]:
    """The readings of ``source_id`` on the app's readings topic, read as the admin, once at
    least ``n`` distinct seqs are there."""

    def mine(values: list[bytes]) -> list[dict]:
        return [r for r in map(json.loads, values) if r["source_id"] == source_id]

    values = _read(box, cluster.env("admin"), box.topic("readings"),
                   until=lambda v: len({r["seq"] for r in mine(v)}) >= n)  # fmt: skip
    return mine(values)


def _one_line_refusal(result, command: str) -> None:
    """Exit 1 with a single line on stderr saying the broker could not be reached."""
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(command), result.stderr
    assert "Unable to bootstrap" in lines[0]


NO_CREDENTIALS = {"CROWDSAFE_KAFKA_CONNECT_TIMEOUT_S": "5"}  # PLAINTEXT, the default


def test_replay_as_the_edge_principal_reaches_the_readings_topic(
    cluster: SecureCluster, edge_app: Sandbox, tmp_path: Path
) -> None:
    start = int(time.time()) - 600
    values = ["120", "135", "", "150", "160"]  # the blank row is an outage: an offline reading
    series = tmp_path / "history.csv"
    series.write_text(
        "timestamp,value\n" + "".join(f"{start + 60 * i},{v}\n" for i, v in enumerate(values))
    )
    args = ("replay", str(series), "--zone", REPLAY_ZONE, "--source-id", "replay:history")

    refused = edge_app.cli(*args, env=NO_CREDENTIALS)
    _one_line_refusal(refused, "replay:")

    result = edge_app.cli(*args, env=cluster.env("edge"))
    assert result.returncode == 0, result.stderr
    assert f"replay: 5 readings for zone {REPLAY_ZONE!r} sent" in result.stderr
    got = _readings_of(edge_app, cluster, "replay:history", 5)
    assert len(got) == 5  # once each; nothing from the refused run
    counts = [r.get("count") for r in sorted(got, key=lambda r: r["ts"])]
    assert counts == [120, 135, None, 150, 160]
    assert {r["zone_id"] for r in got} == {REPLAY_ZONE}
    assert [r["status"] for r in got].count("offline") == 1


@pytest.mark.skipif(not PETS_FRAMES.is_dir(), reason="shared PETS frames not present")
def test_the_camera_as_the_edge_principal_reaches_the_readings_topic(
    cluster: SecureCluster, edge_app: Sandbox, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 4):
        shutil.copy(PETS_FRAMES / f"{i:06d}.jpg", frames)
    args = ("camera", "--source", str(frames), "--camera-id", "pets-cam1",
            "--site", str(bundled_site("pets09-demo.toml")), "--no-flow")  # fmt: skip

    refused = edge_app.cli(*args, env=NO_CREDENTIALS)
    _one_line_refusal(refused, "crowdsafe camera:")

    result = edge_app.cli(*args, env=cluster.env("edge"))
    assert result.returncode == 0, result.stderr
    assert "camera pets-cam1: 3 frames counted, 3 readings sent" in result.stderr
    got = _readings_of(edge_app, cluster, "pets-cam1", 3)
    assert len(got) == 3 and {r["zone_id"] for r in got} == {"pets-plaza"}
    assert all(r["kind"] == "camera" for r in got)
    # an edge principal still writes nothing but readings (the app's alerts topic here)
    with _producer(edge_app.settings(cluster.env("edge")), max_block_ms=15_000) as producer:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(edge_app.topic("alerts"), key=b"pets-plaza", value=b"{}").get(15)


def test_secure_properties_enforce_acls_and_keep_the_controller_on_loopback(
    tmp_path: Path,
) -> None:
    tls = secure_broker.TlsFiles(tmp_path / "ca.pem", tmp_path / "s.pem", tmp_path / "k.pem")
    security = secure_broker.BrokerSecurity(tls, secure_broker.write_password(tmp_path / "a.pw"))
    config = kafka_local.BrokerConfig(
        port=19700, controller_port=19701, state_dir=tmp_path, security=security
    )
    text = kafka_local.render_properties(config)
    props = dict(l.split("=", 1) for l in text.splitlines() if l and not l.startswith("#"))  # noqa: E741
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19700,CONTROLLER://127.0.0.1:19701"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:19700"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    # PLAINTEXT (the demo) has none of it
    plain = kafka_local.render_properties(kafka_local.BrokerConfig(state_dir=tmp_path))
    lines = [line for line in plain.splitlines() if line and not line.startswith("#")]
    assert not [line for line in lines if "SASL" in line or "authorizer" in line or "ssl" in line]


def test_the_admin_scram_credential_is_formatted_without_the_clear_password(
    tmp_path: Path,
) -> None:
    tls = secure_broker.TlsFiles(tmp_path / "ca.pem", tmp_path / "s.pem", tmp_path / "k.pem")
    pw = secure_broker.write_password(tmp_path / "a.pw", "hunter2-very-secret")
    args = secure_broker.scram_format_args(secure_broker.BrokerSecurity(tls, pw), salt=b"s" * 24)
    assert args[0] == "--add-scram"
    assert args[1].startswith("SCRAM-SHA-512=[name=admin,iterations=8192,salt=")
    assert "hunter2" not in " ".join(args)
    assert os.stat(pw).st_mode & 0o777 == 0o600
