"""Access control on the real broker: a second, secure local broker (SASL_SSL with SCRAM-SHA-512,
StandardAuthorizer ACLs) on free ports with its own state under tmp, certificates made here.

One worker runs as the worker principal; an edge principal publishes a surge; dispatch prints
the alert. Then: a forged alert from the edge is refused, clients without or with wrong
credentials are refused, and no password shows up in logs, /metrics or dead letters.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from streams.config.kafka import client_kwargs
from streams.config.settings import Settings
from streams.ops import kafka_local, secure_broker
from streams.ops.acls import Principals, app_acls, apply_acls
from streams.testing import Sandbox, free_port

pytestmark = pytest.mark.kafka

USERS = ("worker", "edge", "dispatch")
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
    admin = cluster.env("admin")
    box.ensure_topics(admin)  # the worker has no right to create the app's topics
    principals = Principals(
        workers=["User:worker"], edges=["User:edge"], dispatchers=["User:dispatch"]
    )
    apply_acls(client_kwargs(box.settings(admin)), app_acls(box.settings(), principals))
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


def _read(settings: Settings, topic: str, until, timeout: float = 60) -> list[bytes]:
    """Values of ``topic`` from the start (no group) until ``until(values)``."""
    consumer = KafkaConsumer(
        topic,
        **client_kwargs(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(values):
            values.extend(m.value for m in consumer)
    finally:
        consumer.close()
    return values


def _alerts(values: list[bytes]) -> list[dict]:
    return [json.loads(v) for v in values]


def _has_density_alert(values: list[bytes]) -> bool:
    return any(a["zone_id"] == SURGE_ZONE and a["kind"] == "density" for a in _alerts(values))


def test_authorised_clients_work_end_to_end(cluster: SecureCluster, run: Sandbox) -> None:
    admin = run.settings(cluster.env("admin"))
    alerts = _alerts(_read(admin, run.topic("alerts"), until=_has_density_alert, timeout=90))
    density = [a for a in alerts if a["zone_id"] == SURGE_ZONE and a["kind"] == "density"]
    assert density and density[0]["state"] == "raised", alerts
    assert all(a["zone_id"] == SURGE_ZONE for a in alerts)

    states = _read(admin, run.topic("zone-state"), until=lambda v: len(v) >= 1)
    assert SURGE_ZONE in {json.loads(v)["zone_id"] for v in states}

    # dispatch, as its own principal, in a group its ACLs allow
    result = run.cli(
        "dispatch", "--group", f"dispatch-{uuid.uuid4().hex[:6]}", "--max", "1",
        "--idle-timeout", "30", env=cluster.env("dispatch"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{alerts[0]['zone_id']}  {alerts[0]['message']}" in result.stdout
    assert "dispatch: 1 alert(s) handled" in result.stderr


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
    admin = run.settings(cluster.env("admin"))
    return _alerts(_read(admin, run.topic("alerts"), until=_has_density_alert, timeout=90))[0]


def test_clients_without_or_with_wrong_credentials_are_refused(
    cluster: SecureCluster, run: Sandbox, tmp_path: Path
) -> None:
    quick = {"bootstrap_timeout_ms": 8000, "request_timeout_ms": 8000}
    # No credentials at all: PLAINTEXT to the SASL_SSL port never gets a broker.
    plain = {"bootstrap_servers": cluster.config.bootstrap}
    with pytest.raises(KafkaError):
        KafkaProducer(**plain, **quick).close()
    # TLS fine, wrong password.
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    bad = {**cluster.env("edge"), "KAFKA_SASL_PASSWORD_FILE": str(wrong)}
    with pytest.raises(KafkaError):
        KafkaProducer(**client_kwargs(run.settings(bad)), **quick).close()
    # An unknown user.
    stranger = {**cluster.env("edge"), "KAFKA_SASL_USERNAME": "mallory"}
    with pytest.raises(KafkaError):
        KafkaProducer(**client_kwargs(run.settings(stranger)), **quick).close()

    # The CLI says so and exits non-zero, without echoing the password it tried.
    result = run.cli(
        "dispatch", "--max", "1", "--idle-timeout", "5",
        env={**bad, "CROWDSAFE_KAFKA_CONNECT_TIMEOUT_S": "8"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "not-the-password" not in result.stdout + result.stderr


def test_credentials_never_appear_in_logs_metrics_or_dead_letters(
    cluster: SecureCluster, run: Sandbox
) -> None:
    admin = run.settings(cluster.env("admin"))
    records = [json.loads(v) for v in _read(admin, run.topic("deadletter"), lambda v: len(v))]
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
