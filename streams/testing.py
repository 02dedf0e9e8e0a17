"""crowdsafe's public test harness: an isolated worker on a real broker.

A deliberate public module (like bytewax's ``testing``): this project's integration tests and
benchmarks use it, and so can anyone checking a site file or an edge client against a real
cluster. :class:`Sandbox` gives one worker its own topic names, app id, state folder and web
port, so runs never see each other's topics, consumer groups or table state::

    box = Sandbox("127.0.0.1:9092", tmp_path)
    box.ensure_topics()
    box.start_worker()
    with box.producer() as p:
        p.send({...})
    alerts = box.read("alerts", until=lambda records: len(records) >= 1)
    box.stop_worker()

Processes are started and stopped through :mod:`streams.ops.procs` (own process group, stopped
by pid), like the broker and the demo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from streams.ops import procs

# The folder this ``streams`` was imported from (a checkout, a worktree or site-packages):
# ``python -m`` puts the cwd first on sys.path, so the subprocesses run this same copy.
IMPORT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """One isolated worker: its own topic names, app id, state folder and web port."""

    def __init__(self, bootstrap: str, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        """``extra_env``: more variables for the worker and the CLI, e.g. ``KAFKA_SECURITY_*``
        and ``KAFKA_SASL_*`` for a secure cluster (``streams.ops.secure_broker.client_env``)."""
        suffix = uuid.uuid4().hex[:8]
        self.suffix = suffix
        self.tmp = tmp
        self.web_port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": bootstrap,
            "CROWDSAFE_APP_ID": f"crowdsafe-test-{suffix}",
            "CROWDSAFE_READINGS_TOPIC": f"t-{suffix}.readings",
            "CROWDSAFE_ZONE_STATE_TOPIC": f"t-{suffix}.zone-state",
            "CROWDSAFE_ALERTS_TOPIC": f"t-{suffix}.alerts",
            "CROWDSAFE_DEADLETTER_TOPIC": f"t-{suffix}.deadletter",
            "CROWDSAFE_ACKS_TOPIC": f"t-{suffix}.alerts.ack",
            "CROWDSAFE_SILENCES_TOPIC": f"t-{suffix}.silences",
            "CROWDSAFE_AUDIT_TOPIC": f"t-{suffix}.audit",
            "CROWDSAFE_CAP_TOPIC": f"t-{suffix}.alerts.cap",
            "CROWDSAFE_DISPATCH_TOPIC_PREFIX": f"t-{suffix}.dispatch.",
            "CROWDSAFE_STATE_DIR": str(tmp / "state"),
            "CROWDSAFE_WEB_PORT": str(self.web_port),
            "CROWDSAFE_TOPIC_PARTITIONS": "2",
            # Off unless a test turns it on: a test that idles past stale_after_s would
            # otherwise see every zone's sources reported silent.
            "CROWDSAFE_SILENCE_SWEEP_S": "0",
            **(extra_env or {}),
        }
        self.bootstrap = bootstrap
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # The command centre (start_centre): its own port and users file in tmp.
        self.centre_port = free_port()
        self.env["CROWDSAFE_CENTRE_PORT"] = str(self.centre_port)
        self.env["CROWDSAFE_USERS_FILE"] = str(tmp / "centre-users.toml")
        self.centre_proc: subprocess.Popen | None = None
        self.centre_starts = 0

    def topic(self, name: str) -> str:
        """This sandbox's name of topic ``name`` (``alerts``, ``acks``, ``audit``...), or of a
        route's topic (``dispatch.police``)."""
        if name.startswith("dispatch."):
            return self.env["CROWDSAFE_DISPATCH_TOPIC_PREFIX"] + name.removeprefix("dispatch.")
        return self.env[f"CROWDSAFE_{name.upper().replace('-', '_')}_TOPIC"]

    def cli(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """``crowdsafe *args`` with this sandbox's environment, updated with ``env`` (another
        principal's credentials, say)."""
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env={**self.env, **(env or {})},
            cwd=IMPORT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, timeout: float = 90) -> None:
        self.starts += 1
        log = open(self.tmp / f"worker-{self.starts}.log", "w")  # noqa: SIM115 (lives with proc)
        self._log = log
        self.proc = procs.spawn(
            [sys.executable, "-m", "streams.cli", "worker"], log=log, env=self.env, cwd=IMPORT_ROOT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.log_tail()}")
            if "Worker ready" in (self.tmp / f"worker-{self.starts}.log").read_text():
                return
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def stop_worker(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, grace_s=30)
        if getattr(self, "_log", None):
            self._log.close()

    def add_user(self, name: str, role: str) -> str:
        """A command-centre user of this sandbox (``crowdsafe users add``); their token."""
        result = self.cli("users", "add", name, "--role", role)
        if result.returncode != 0:
            raise RuntimeError(f"users add failed: {result.stderr}")
        return result.stdout.strip().splitlines()[-1]

    def start_centre(self, timeout: float = 60, env: dict[str, str] | None = None) -> None:
        """``crowdsafe centre`` on :attr:`centre_port`, returning once it has read the topics
        to their end (its ``/health`` says ``caught_up``). Stop it with :meth:`stop_centre`."""
        self.centre_starts += 1
        path = self.tmp / f"centre-{self.centre_starts}.log"
        self._centre_log = open(path, "w")  # noqa: SIM115 (lives with the process)
        self.centre_proc = procs.spawn(
            [sys.executable, "-m", "streams.cli", "centre"],
            log=self._centre_log, env={**self.env, **(env or {})}, cwd=IMPORT_ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.centre_proc.poll() is not None:
                raise RuntimeError(f"centre exited {self.centre_proc.returncode}:\n"
                                   f"{path.read_text()[-4000:]}")  # fmt: skip
            try:
                if self.centre_get("/health").get("caught_up"):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"centre not ready in {timeout}s:\n{path.read_text()[-4000:]}")

    def stop_centre(self) -> None:
        if self.centre_proc is not None:
            procs.stop(self.centre_proc, grace_s=15)
            self.centre_proc = None
        if getattr(self, "_centre_log", None):
            self._centre_log.close()

    def centre_get(self, path: str, token: str | None = None) -> dict:
        """GET the centre's ``path`` (JSON), with ``token`` as a Bearer token if given."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.centre_port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())

    def centre_post(self, path: str, body: dict, token: str) -> tuple[int, dict]:
        """POST JSON to the centre's ``path`` as ``token``'s user: (status, JSON answer)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.centre_port}{path}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def log_tail(self, lines: int = 40) -> str:
        text = (self.tmp / f"worker-{self.starts}.log").read_text()
        return "\n".join(text.splitlines()[-lines:])

    def producer(self):
        from streams.edge.producer import ReadingProducer

        return ReadingProducer(self.bootstrap, self.topic("readings"))

    def consume(
        self,
        topic_name: str,
        until: Callable[[list], bool],
        timeout: float = 120,
        idle_s: float | None = None,
        env: dict[str, str] | None = None,
    ) -> list:
        """Records (kafka-python ``ConsumerRecord``) of ``topic_name`` from the start, until
        ``until(records)``, ``timeout`` seconds, or ``idle_s`` seconds without a new one.
        ``env``: other credentials than the sandbox's (its KAFKA_* settings)."""
        from kafka import KafkaConsumer

        from streams.config.kafka import client_kwargs

        consumer = KafkaConsumer(
            topic_name,
            **client_kwargs(self.settings(env)),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=2 * 1024 * 1024,  # a dead letter is up to ~1 MB
        )
        records: list = []
        deadline = last = time.monotonic()
        deadline += timeout
        try:
            while not until(records) and time.monotonic() < deadline:
                if idle_s is not None and time.monotonic() - last > idle_s:
                    break
                # Drain what the topic holds now before judging: ``until`` sees every record
                # there is, not one partition's first fetch. "Now" is the end offsets at the
                # drain's first fetch, so a producer still writing cannot hold judging back.
                ends = None
                while polled := consumer.poll(timeout_ms=1000):
                    for batch in polled.values():
                        records.extend(batch)
                    last = time.monotonic()
                    if ends is None:
                        ends = consumer.end_offsets(list(consumer.assignment()))
                    if last > deadline or all(consumer.position(tp) >= n for tp, n in ends.items()):
                        break
        finally:
            consumer.close()
        return records

    def read(self, topic: str, until, timeout: float = 60) -> list[dict]:
        """JSON values of the sandbox's ``topic`` (e.g. ``"alerts"``) from the start, until
        ``until(values)`` is true."""
        values: list[dict] = []

        def enough(records: list) -> bool:
            values.extend(json.loads(r.value) for r in records[len(values) :])
            return until(values)

        self.consume(self.topic(topic), enough, timeout)
        return values

    def metrics(self) -> dict[str, float]:
        """The worker's reading counters from ``/metrics`` (they restart at zero with every
        incarnation): ``readings`` (applied), ``duplicates``, ``rerouted``, ``rejected``, and
        ``rejected:<class>`` for each dead-letter class."""
        from streams.worker.metrics import samples, scrape

        names = {
            "crowdsafe_readings_total": "readings",
            "crowdsafe_readings_duplicate_total": "duplicates",
            "crowdsafe_readings_rerouted_total": "rerouted",
            "crowdsafe_readings_rejected_total": "rejected",
        }
        out = dict.fromkeys(names.values(), 0.0)
        for s in samples(scrape(self.web_port, names=names), "crowdsafe_readings_"):
            if s.name not in names:
                continue
            key, value, reason = names[s.name], float(s.value), s.labels.get("reason")
            out[key] += value
            if key == "rejected" and reason is not None:
                out[f"rejected:{reason}"] = out.get(f"rejected:{reason}", 0) + value
        return out

    def health(self) -> int:
        """The HTTP status of the worker's ``/health`` (200 while its agent runs)."""
        try:
            url = f"http://127.0.0.1:{self.web_port}/health"
            return urllib.request.urlopen(url, timeout=10).status  # noqa: S310 - loopback
        except urllib.error.HTTPError as exc:
            return exc.code

    def simulate_surge_until_now(self, duration_s: int = 800) -> None:
        """Publish the surge scenario's first ``duration_s`` seconds, ending now: by default
        into the surge's hold (critical from ~t+9 min to t+14 min), so the surge zone has an
        open critical alert and every zone was updated seconds ago."""
        from datetime import UTC, datetime, timedelta

        start = datetime.now(UTC) - timedelta(seconds=duration_s)
        result = self.cli(
            "simulate", "--scenario", "surge", "--speed", "0", "--quiet",
            "--duration", str(duration_s), "--start", start.isoformat(),
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"simulate failed: {result.stderr}")

    def settings(self, env: dict[str, str] | None = None):
        """The worker's Settings (its topic names, app id, credentials), updated with ``env``."""
        from streams.config.settings import Settings

        merged = {**self.env, **(env or {})}
        env = {k: v for k, v in merged.items() if k.startswith(("CROWDSAFE_", "KAFKA_"))}
        return Settings(**_settings_kwargs(env))

    def ensure_topics(self, env: dict[str, str] | None = None) -> None:
        """The worker's topics, created with this sandbox's credentials or ``env``'s."""
        from streams.ops.topics import ensure_app_topics

        ensure_app_topics(self.settings(env), self.bootstrap)

    def delete_topics(self) -> list[str]:
        """Delete every topic of this sandbox (its own and its workers' changelogs): a whole
        test run creates thousands of partitions otherwise, more than a 512 MB broker holds
        (its controller ran out of heap). Best effort: the names it asked to delete."""
        from kafka import KafkaAdminClient

        from streams.config.kafka import client_kwargs

        try:
            admin = KafkaAdminClient(**client_kwargs(self.settings()), request_timeout_ms=15_000)
        except Exception:  # noqa: BLE001 - a broker already gone: nothing to tidy
            return []
        try:
            mine = [t for t in admin.list_topics() if self.suffix in t]
            if mine:
                admin.delete_topics(mine, timeout_ms=15_000)
            return mine
        except Exception:  # noqa: BLE001 - tidying must not fail the test it follows
            return []
        finally:
            admin.close()


class HttpReceiver:
    """An HTTP server on a free loopback port, in a thread: keeps each POST's body and answers
    ``status`` (a webhook's far end). ``url`` to post to; ``stop()`` when done."""

    def __init__(self, status: int) -> None:
        self.bodies: list[bytes] = []
        lock = threading.Lock()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    bodies.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _settings_kwargs(env: dict[str, str]) -> dict[str, str]:
    """Settings fields from CROWDSAFE_* variables and the KAFKA_* aliases (KAFKA_BOOTSTRAP,
    KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE), without touching os.environ."""
    out = {
        k.removeprefix("CROWDSAFE_").lower(): v
        for k, v in env.items()
        if k.startswith("CROWDSAFE_")
    }
    out.update({k: v for k, v in env.items() if k.startswith("KAFKA_")})  # the fields' aliases
    return out


def alert_transitions(records: list[dict]) -> list[dict]:
    """The alert transitions inside ``crowd.alerts`` incident records (version 2), in order: for
    each record caused by a member alert, that member (``alert_id``, ``kind``, ``severity``,
    ``state`` raised/escalated/cleared, ``value``...) with the record's ``zone_id``,
    ``incident_id``, ``seq`` and ``transition``, as version 1 published them one by one.

    >>> member = {"alert_id": "z/density/1", "kind": "density", "state": "raised"}
    >>> record = {"v": 2, "incident_id": "z/crowd/1", "seq": 1, "zone_id": "z",
    ...           "transition": "raised", "alert_id": "z/density/1", "members": [member]}
    >>> [(a["alert_id"], a["state"], a["transition"]) for a in alert_transitions([record])]
    [('z/density/1', 'raised', 'raised')]
    """
    out = []
    for record in records:
        if record.get("alert_id") is None:
            continue  # an acknowledgement, an escalation...: no alert changed
        member = next(m for m in record["members"] if m["alert_id"] == record["alert_id"])
        keep = ("zone_id", "zone_name", "incident_id", "seq", "transition", "routes", "held")
        out.append({**member, **{k: record.get(k) for k in keep}})
    return out
