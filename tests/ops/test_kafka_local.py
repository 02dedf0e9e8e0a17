"""The local broker: tool checks, jar stamp and properties rendering (unit), and a real broker
on 19092/19093 with a throw-away data dir (``-m kafka``), so the main broker on 9092 that
other tests use is never touched."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from streams.cli import main
from streams.config.settings import Settings, get_settings
from streams.ops import kafka_local
from streams.ops.kafka_local import (
    BrokerConfig,
    BrokerStartError,
    MissingToolError,
    down,
    render_properties,
    status,
    up,
)
from streams.ops.topics import TopicPartitionsMismatch, ensure_topics

TEST_PORT, TEST_CONTROLLER_PORT = 19092, 19093


@pytest.fixture
def empty_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which neither java nor mvn exists."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def lib_dir(tmp_path: Path) -> Path:
    """An empty jar folder, i.e. jars not yet resolved."""
    return tmp_path / "kafka-lib"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point ``get_settings()`` (cached) at a tmp data dir and free-looking ports."""
    monkeypatch.setenv("CROWDSAFE_KAFKA_DATA_DIR", str(tmp_path / "kafka-state"))
    monkeypatch.setenv("CROWDSAFE_KAFKA_PORT", str(TEST_PORT + 10))
    monkeypatch.setenv("CROWDSAFE_KAFKA_CONTROLLER_PORT", str(TEST_CONTROLLER_PORT + 10))
    get_settings.cache_clear()
    yield tmp_path / "kafka-state"
    get_settings.cache_clear()


# --- unit -------------------------------------------------------------------------------


def test_missing_java_is_a_typed_error_with_the_fix(empty_path: None, tmp_path: Path) -> None:
    with pytest.raises(MissingToolError) as err:
        up(BrokerConfig(state_dir=tmp_path / "state"), log=lambda _: None)
    message = str(err.value)
    assert message.startswith("java not found")
    assert "openjdk-17" in message
    assert "\n" not in message
    assert not (tmp_path / "state" / "broker.pid").exists()


def test_missing_mvn_is_reported_only_when_jars_must_be_fetched(
    empty_path: None, lib_dir: Path
) -> None:
    with pytest.raises(MissingToolError, match=r"^mvn not found.*apt-get install maven"):
        kafka_local.resolve_jars(lib_dir, log=lambda _: None)


def test_resolved_jars_are_reused_without_mvn_until_the_pom_changes(
    empty_path: None, lib_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = kafka_local.jar_dir(lib_dir)
    assert jars.parent == lib_dir
    jars.mkdir(parents=True)
    (jars / ".resolved").write_text(kafka_local._pom_digest())
    assert kafka_local.resolve_jars(lib_dir, log=lambda _: None) is False

    # Another pom (a Kafka version bump) resolves into a folder of its own: the jars of the
    # old one stay in place for a broker that still runs from them.
    monkeypatch.setattr(kafka_local, "_pom_digest", lambda: "f" * 64)
    assert kafka_local.jar_dir(lib_dir) != jars
    assert not kafka_local.jars_resolved(lib_dir)
    with pytest.raises(MissingToolError):  # would have to run mvn again
        kafka_local.resolve_jars(lib_dir, log=lambda _: None)
    assert (jars / ".resolved").is_file()


def test_broker_files_come_from_the_package_and_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CROWDSAFE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CROWDSAFE_KAFKA_LIB_DIR", str(tmp_path / "jars"))
    config = BrokerConfig.from_settings(Settings())
    assert config.state_dir == tmp_path / "state" / "kafka"
    assert config.jar_dir.parent == tmp_path / "jars"
    cmd = kafka_local._java_cmd("java", config, "1g", "kafka.Kafka")
    assert f"-Dlog4j2.configurationFile={tmp_path / 'state' / 'kafka' / 'log4j2.xml'}" in cmd
    assert cmd[cmd.index("-cp") + 1] == f"{config.jar_dir}/*"


def test_cli_prints_one_line_error_and_exits_nonzero(
    empty_path: None, settings_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "up"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crowdsafe kafka up: java not found")
    assert err.count("\n") == 1


def test_cli_status_when_down_exits_3(
    settings_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kafka", "status"]) == 3
    out = capsys.readouterr().out
    assert out.startswith(f"kafka: down (would listen on 127.0.0.1:{TEST_PORT + 10}")
    assert str(settings_env / "data") in out


def test_properties_render_ports_and_data_dir(tmp_path: Path) -> None:
    config = BrokerConfig(port=19500, controller_port=19501, state_dir=tmp_path, partitions=6)
    text = render_properties(config)
    props = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19500,CONTROLLER://127.0.0.1:19501"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19500"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19501"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["num.partitions"] == "6"
    assert props["process.roles"] == "broker,controller"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert "{" not in "".join(props.values())


def test_cluster_id_is_kafka_style() -> None:
    ids = {kafka_local.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert uuid.UUID(bytes=base64.urlsafe_b64decode(cid + "=="))


def test_stale_pid_file_reads_as_down_and_is_removed(tmp_path: Path) -> None:
    config = BrokerConfig(state_dir=tmp_path)
    config.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a broker
    state = status(config)
    assert not state.running and state.pid is None
    assert not config.pid_file.exists()


def test_up_refuses_a_port_taken_by_another_process(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("needs java on PATH")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = BrokerConfig(port=port, controller_port=port + 1, state_dir=tmp_path)
        with pytest.raises(BrokerStartError, match=f"port {port} .* already in use"):
            up(config, log=lambda _: None)


# --- integration: a real broker ---------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    config = BrokerConfig(
        port=TEST_PORT,
        controller_port=TEST_CONTROLLER_PORT,
        state_dir=tmp_path_factory.mktemp("kafka-it"),
    )
    up(config, timeout_s=120)
    yield config
    down(config, grace_s=20)
    assert not status(config).running


def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
    finally:
        admin.close()


@pytest.mark.kafka
def test_up_reports_running_and_second_up_is_a_noop(broker: BrokerConfig) -> None:
    first = status(broker)
    assert first.running and first.pid is not None
    assert first.bootstrap == f"127.0.0.1:{TEST_PORT}"
    assert int(broker.pid_file.read_text()) == first.pid
    assert broker.server_log.stat().st_size > 0  # log4j2 binding works: the broker logs

    said: list[str] = []
    again = up(broker, log=said.append)
    assert again.pid == first.pid
    assert said == [f"kafka: already up (pid {first.pid}) at 127.0.0.1:{TEST_PORT}"]


@pytest.mark.kafka
def test_message_round_trip(broker: BrokerConfig) -> None:
    topic = f"it.roundtrip.{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, {topic: 1})
    payload = uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send(topic, key=b"zone-a", value=payload).get(timeout=15)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"it-{topic}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
    )
    try:
        got = next(iter(consumer))
    finally:
        consumer.close()
    assert (got.key, got.value) == (b"zone-a", payload)


@pytest.mark.kafka
def test_ensure_topics_creates_requested_partitions_and_is_idempotent(
    broker: BrokerConfig,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    wanted = {f"it.a.{suffix}": 3, f"it.b.{suffix}": 1}
    assert sorted(ensure_topics(broker.bootstrap, wanted)) == sorted(wanted)
    assert _partition_counts(broker.bootstrap, list(wanted)) == wanted

    assert ensure_topics(broker.bootstrap, wanted) == []
    more = {**wanted, f"it.c.{suffix}": 2}
    assert ensure_topics(broker.bootstrap, more) == [f"it.c.{suffix}"]

    with pytest.raises(TopicPartitionsMismatch, match=f"it.a.{suffix} has 3 \\(want 5\\)"):
        ensure_topics(broker.bootstrap, {f"it.a.{suffix}": 5})


@pytest.mark.kafka
def test_topics_are_not_auto_created(broker: BrokerConfig) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=2000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(f"it.undeclared.{uuid.uuid4().hex[:8]}", b"x").get(timeout=5)
    finally:
        producer.close(timeout=2)


@pytest.mark.kafka
def test_down_stops_the_process_and_up_restarts_on_the_same_data(broker: BrokerConfig) -> None:
    topic = f"it.persist.{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, {topic: 2})
    pid = status(broker).pid
    assert pid is not None

    assert down(broker, log=lambda _: None) is True
    assert not kafka_local._alive(pid)
    assert not broker.pid_file.exists()
    assert not status(broker).running
    assert down(broker, log=lambda _: None) is False  # already down: says so, no error

    started = time.monotonic()
    restarted = up(broker, log=lambda _: None)  # leaves the module broker up for the others
    assert restarted.running and restarted.pid != pid
    assert time.monotonic() - started < 60
    assert _partition_counts(broker.bootstrap, [topic]) == {topic: 2}  # data dir kept


@pytest.mark.kafka
def test_broker_that_dies_on_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    config = BrokerConfig(port=19192, controller_port=19193, state_dir=tmp_path, heap="1x")
    with pytest.raises(BrokerStartError) as err:
        up(config, timeout_s=60, log=lambda _: None)
    assert err.value.message.startswith("broker exited during start-up")
    assert "Invalid maximum heap size" in err.value.log_tail
    assert not config.pid_file.exists()


@pytest.mark.kafka
def test_ctrl_c_while_the_broker_starts_stops_the_half_started_jvm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during ``kafka up`` or the demo's start-up (7-30 s on a first run): the JVM runs in
    a session of its own, so the terminal's Ctrl-C never reaches it; ``up`` stops it (it was
    left running, and the demo printed a traceback)."""
    started: list[int] = []

    def interrupted(config: BrokerConfig, pid: int, timeout_s: float) -> None:
        started.append(pid)
        raise KeyboardInterrupt

    monkeypatch.setattr(kafka_local, "_wait_ready", interrupted)
    config = BrokerConfig(port=19292, controller_port=19293, state_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        up(config, log=lambda _: None)
    assert started and not kafka_local.procs.alive(started[0])
    assert not config.pid_file.exists()


def test_relative_state_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    config = BrokerConfig(state_dir=Path("run/kafka"))
    assert config.properties_file == tmp_path / "run" / "kafka" / "server.properties"
    assert f"log.dirs={tmp_path / 'run' / 'kafka' / 'data'}" in render_properties(config)
