"""The local single-node Kafka broker (KRaft) behind ``crowdsafe kafka up|down|status``.

Lifecycle, all driven by one :class:`BrokerConfig`:

``up``     check tools -> resolve jars (first run) -> render server.properties -> format the
           storage (new data dir only) -> start ``kafka.Kafka`` in its own session -> wait
           until it serves metadata.
``down``   SIGTERM the broker's process group, wait, SIGKILL after a timeout.
``status`` read the pid file and check the process is still our broker.

Everything the broker writes lives under ``BrokerConfig.state_dir`` (``<state dir>/kafka``):
``data/`` (log.dirs), the rendered ``server.properties`` and ``log4j2.xml``, ``broker.pid`` and
``logs/``. The templates and the Maven file ship in the package (``streams/ops/kafka/``); the
jars live in ``BrokerConfig.lib_dir`` (``deploy/kafka/lib`` in a checkout, the user cache
folder when installed: ``streams/config/paths.py``), shared by every state dir, one folder per
pom digest so that a Kafka version bump never replaces the jars of a broker still running.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.config.paths import default_kafka_lib_dir, default_state_dir, kafka_resource
from streams.config.settings import Settings
from streams.ops import procs, secure_broker

Log = Callable[[str], None]


class KafkaLocalError(Exception):
    """Base for everything that stops the local broker from being managed; ``str()`` starts
    with a one-line message that says what to do."""


class MissingToolError(KafkaLocalError):
    """``java`` or ``mvn`` is not on PATH."""


class JarResolutionError(KafkaLocalError):
    """Maven could not fetch the Kafka jars."""


class BrokerStartError(KafkaLocalError):
    """The broker could not be formatted, started, or did not become ready in time."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.message = message
        self.log_tail = log_tail
        super().__init__(f"{message}\n{log_tail}" if log_tail else message)


# Installation hints per tool: the fix belongs in the message, not in a wiki.
_TOOL_FIX = {
    "java": "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)",
    "mvn": "install Maven (apt-get install maven); it is only needed to fetch the Kafka jars once",
}


@dataclass(frozen=True)
class BrokerConfig:
    port: int = 9092
    controller_port: int = 9093
    state_dir: Path = field(default_factory=lambda: default_state_dir() / "kafka")
    # Two cores and a broker that holds a handful of small topics: 512 MB is plenty, and the
    # Kafka default (1 GB) would compete with the Faust worker and RocksDB for memory.
    heap: str = "512m"
    partitions: int = 4
    lib_dir: Path = field(default_factory=default_kafka_lib_dir)
    # None: PLAINTEXT on loopback (the local demo). Set: SASL_SSL, SCRAM and ACLs.
    security: secure_broker.BrokerSecurity | None = None

    def __post_init__(self) -> None:
        # Absolute paths: the broker runs with cwd=state_dir, and the pid check matches the
        # properties path in the process's command line.
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        object.__setattr__(self, "lib_dir", Path(self.lib_dir).resolve())

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerConfig:
        return cls(
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            state_dir=settings.kafka_dir,
            heap=settings.kafka_heap,
            partitions=settings.topic_partitions,
            lib_dir=settings.kafka_lib_dir,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jar_dir(self) -> Path:
        return jar_dir(self.lib_dir)

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.state_dir / "log4j2.xml"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def stdout_log(self) -> Path:
        # The JVM's own stdout/stderr: crashes, OOMs, log4j config errors.
        return self.log_dir / "broker.out"

    @property
    def server_log(self) -> Path:
        # Written by log4j2 (streams/ops/kafka/log4j2.xml).
        return self.log_dir / "server.log"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    server_log: Path

    def describe(self) -> str:
        if self.running:
            return (
                f"kafka: up (pid {self.pid}) at {self.bootstrap}, "
                f"data {self.data_dir}, log {self.server_log}"
            )
        return f"kafka: down (would listen on {self.bootstrap}, data {self.data_dir})"


# --- tools and jars ---------------------------------------------------------------------


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"{name} not found on PATH: {_TOOL_FIX[name]}")
    return path


@cache
def _pom_digest() -> str:
    return hashlib.sha256(kafka_resource("pom.xml").read_bytes()).hexdigest()


def jar_dir(lib_dir: Path) -> Path:
    """Where the jars of the bundled pom.xml live under ``lib_dir``: one folder per pom digest,
    so a Kafka version bump resolves into a new folder instead of mixing two versions on the
    class path or deleting jars that a running broker still reads."""
    return lib_dir / f"kafka-{_pom_digest()[:16]}"


def jars_resolved(lib_dir: Path) -> bool:
    """True once Maven has finished copying the jars (the stamp is written last)."""
    return (jar_dir(lib_dir) / ".resolved").is_file()


def resolve_jars(lib_dir: Path, log: Log = print) -> bool:
    """Fetch the broker's classpath into ``jar_dir(lib_dir)`` unless it is already there.

    Returns True if Maven ran. ``mvn`` is only required here, so a machine with the jars
    already in place runs the broker with just a JRE. Maven reuses its own ``~/.m2`` cache.
    """
    if jars_resolved(lib_dir):
        return False
    mvn = require_tool("mvn")
    target = jar_dir(lib_dir)
    log(f"kafka: resolving Kafka jars from Maven Central into {target} (first run, ~1 min) ...")
    # Only a half-finished earlier attempt (no stamp) is ever deleted: no broker runs from it.
    shutil.rmtree(target, ignore_errors=True)
    started = time.monotonic()
    # Maven runs on a copy of the pom in a scratch folder: the installed package may be
    # read-only, and nothing Maven leaves behind should land next to it.
    with tempfile.TemporaryDirectory(prefix="crowdsafe-mvn-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_bytes(kafka_resource("pom.xml").read_bytes())
        proc = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-Dcrowdsafe.kafka.lib={target}"],
            capture_output=True,
            text=True,
            check=False,
            cwd=work,
        )  # fmt: skip
    if proc.returncode != 0 or not any(target.glob("kafka_2.13-*.jar")):
        tail = _tail_text(proc.stdout + proc.stderr, 20)
        raise JarResolutionError(
            f"mvn dependency:copy-dependencies failed (exit {proc.returncode}); "
            f"check network access to Maven Central\n{tail}"
        )
    (target / ".resolved").write_text(_pom_digest() + "\n")
    log(
        f"kafka: {len(list(target.glob('*.jar')))} jars in {target} ({time.monotonic() - started:.0f}s)"
    )
    return True


# --- configuration and storage ----------------------------------------------------------


def render_properties(config: BrokerConfig) -> str:
    template = kafka_resource("server.properties").read_text()
    return template.format(
        port=config.port,
        controller_port=config.controller_port,
        data_dir=config.data_dir,
        partitions=config.partitions,
        **secure_broker.listener_lines(config.port, config.controller_port, config.security),
    )


def _write_properties(config: BrokerConfig) -> None:
    """The rendered ``server.properties``; owner-only in secure mode (it holds the admin's
    password in its JAAS lines)."""
    text = render_properties(config)
    if config.security is None:
        config.properties_file.write_text(text)
        return
    secure_broker.prepare(config.security)
    secure_broker._write_private(config.properties_file, text)


def new_cluster_id() -> str:
    """A Kafka-style cluster id: a random UUID in URL-safe base64 without padding. Kafka's own
    ``Uuid.randomUuid`` re-draws ids starting with '-' since they read as CLI flags."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _java_cmd(java: str, config: BrokerConfig, max_heap: str, main: str, *args: str) -> list[str]:
    return [
        java,
        f"-Xmx{max_heap}",
        "-Xms64m",  # grow on demand: an idle dev broker should not hold its whole heap
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config.log4j_file}",
        f"-Dkafka.logs.dir={config.log_dir}",
        "-cp",
        f"{config.jar_dir}/*",  # the JVM expands the wildcard itself; no shell involved
        main,
        *args,
    ]


def format_storage(java: str, config: BrokerConfig, log: Log = print) -> bool:
    """Format ``data_dir`` for a single-voter KRaft quorum; a no-op (False) if it already
    holds a formatted log, so restarts keep their topics and offsets."""
    if (config.data_dir / "meta.properties").is_file():
        return False
    cluster_id = new_cluster_id()
    log(f"kafka: formatting {config.data_dir} (cluster id {cluster_id})")
    cmd = _java_cmd(
        java,
        config,
        "256m",  # a one-shot formatter
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--cluster-id",
        cluster_id,
        "--config",
        str(config.properties_file),
    )
    if config.security is not None:
        # The first SCRAM user (the admin) must exist before the broker can authenticate
        # anyone, itself included: in KRaft it is written into the metadata log here.
        cmd += secure_broker.scram_format_args(config.security)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BrokerStartError(
            f"formatting {config.data_dir} failed (exit {proc.returncode})",
            _tail_text(proc.stdout + proc.stderr, 20),
        )
    return True


# --- process lifecycle ------------------------------------------------------------------

# Brokers started by this Python process, kept so they can be reaped: without a wait() a
# stopped broker stays a zombie and still answers kill(pid, 0) as if it were alive.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _read_pid(config: BrokerConfig) -> int | None:
    try:
        return int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    return procs.alive(pid)


def _is_our_broker(pid: int, config: BrokerConfig) -> bool:
    """Guard against a stale pid file whose pid now belongs to some other process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    return b"kafka.Kafka" in cmdline and str(config.properties_file).encode() in cmdline


def _running_pid(config: BrokerConfig) -> int | None:
    """The pid of this config's broker if it runs; a stale pid file is removed."""
    pid = _read_pid(config)
    if pid is not None and _alive(pid) and _is_our_broker(pid, config):
        return pid
    config.pid_file.unlink(missing_ok=True)
    return None


def _port_in_use(port: int) -> bool:
    # Connect, not a bind as demo._port_free: whether something answers (readiness too).
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def status(config: BrokerConfig) -> BrokerStatus:
    return BrokerStatus(
        running=(pid := _running_pid(config)) is not None,
        pid=pid,
        bootstrap=config.bootstrap,
        data_dir=config.data_dir,
        server_log=config.server_log,
    )


def up(config: BrokerConfig, timeout_s: float = 90.0, log: Log = print) -> BrokerStatus:
    """Start the broker and return once it serves metadata; a no-op if it already runs."""
    if (pid := _running_pid(config)) is not None:
        log(f"kafka: already up (pid {pid}) at {config.bootstrap}")
        return status(config)
    java = require_tool("java")
    for port in (config.port, config.controller_port):
        if _port_in_use(port):
            raise BrokerStartError(
                f"port {port} on 127.0.0.1 is already in use by another process; stop it or "
                "set CROWDSAFE_KAFKA_PORT / CROWDSAFE_KAFKA_CONTROLLER_PORT"
            )
    resolve_jars(config.lib_dir, log)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    _write_properties(config)
    # A copy next to the data: the JVM reads it by path, and the state dir is always writable.
    shutil.copyfile(kafka_resource("log4j2.xml"), config.log4j_file)
    format_storage(java, config, log)

    log(f"kafka: starting broker on {config.bootstrap} (heap {config.heap}) ...")
    started = time.monotonic()
    with config.stdout_log.open("ab") as out:
        # Own session: Ctrl-C in the terminal that ran `up` must not take the broker down,
        # and `down` can signal the whole group.
        proc = procs.spawn(
            _java_cmd(java, config, config.heap, "kafka.Kafka", str(config.properties_file)),
            log=out,
            cwd=config.state_dir,
        )
    _children[proc.pid] = proc
    config.pid_file.write_text(f"{proc.pid}\n")
    try:
        _wait_ready(config, proc.pid, timeout_s)
    except BaseException:  # a failed start, or Ctrl-C while waiting (the JVM has its own session)
        _stop_pid(proc.pid, grace_s=10)  # never leave a half-started JVM behind
        config.pid_file.unlink(missing_ok=True)
        raise
    log(f"kafka: up (pid {proc.pid}) at {config.bootstrap} in {time.monotonic() - started:.1f}s")
    return status(config)


def _wait_ready(config: BrokerConfig, pid: int, timeout_s: float) -> None:
    """Ready means a client can bootstrap and sees an unfenced broker in the metadata, not
    merely that the port is open (the socket accepts before the broker has caught up with
    the metadata log and can serve requests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise BrokerStartError(
                f"broker exited during start-up; see {config.server_log}", _log_tail(config)
            )
        if _port_in_use(config.port) and _serves_metadata(config):
            return
        time.sleep(0.5)
    raise BrokerStartError(
        f"broker not ready on {config.bootstrap} after {timeout_s:.0f}s; see {config.server_log}",
        _log_tail(config),
    )


def admin_client_kwargs(config: BrokerConfig) -> dict:
    """kafka-python connection arguments for this broker's admin: the bootstrap alone, or in
    secure mode TLS and the admin's SCRAM login."""
    if config.security is None:
        return {"bootstrap_servers": config.bootstrap}
    return secure_broker.admin_client_kwargs(config.bootstrap, config.security)


def _serves_metadata(config: BrokerConfig) -> bool:
    try:
        admin = KafkaAdminClient(
            **admin_client_kwargs(config),
            request_timeout_ms=3000,
            client_id="crowdsafe-kafka-up",
        )
    except (KafkaError, OSError):
        return False
    try:
        brokers = admin.describe_cluster().get("brokers", [])
        return any(not b.get("is_fenced") for b in brokers)
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _stop_pid(pid: int, grace_s: float) -> bool:
    """SIGTERM the broker's process group, SIGKILL it after ``grace_s``. True if it was
    killed rather than stopped cleanly."""
    child = _children.pop(pid, None)
    return procs.stop(child if child is not None else pid, grace_s)


def down(config: BrokerConfig, grace_s: float = 30.0, log: Log = print) -> bool:
    """Stop the broker; False if it was not running. A clean SIGTERM shutdown lets the next
    ``up`` skip log recovery, hence the generous grace period before SIGKILL."""
    pid = _running_pid(config)
    if pid is None:
        log(f"kafka: not running (data {config.data_dir})")
        return False
    log(f"kafka: stopping broker (pid {pid}) ...")
    killed = _stop_pid(pid, grace_s)
    config.pid_file.unlink(missing_ok=True)
    log(f"kafka: {'killed after ' + str(int(grace_s)) + 's' if killed else 'stopped'}")
    return True


# --- logs -------------------------------------------------------------------------------


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(f"  | {line}" for line in text.strip().splitlines()[-lines:])


def read_tail(path: Path, max_bytes: int = 64_000) -> str:
    """The end of the file ``path`` (its last ``max_bytes``): a long log's last lines without
    reading all of it."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - max_bytes))
        return f.read().decode(errors="replace")


def _log_tail(config: BrokerConfig, lines: int = 25) -> str:
    parts = []
    for path in (config.stdout_log, config.server_log):
        if path.is_file() and path.stat().st_size:
            parts.append(f"  {path}:\n{_tail_text(read_tail(path), lines)}")
    return "\n".join(parts)
