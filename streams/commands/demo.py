"""``crowdsafe demo``: broker, worker, command centre, simulator and dispatch feed together;
Ctrl-C stops them.

The local broker is started only when ``KAFKA_BOOTSTRAP`` is not set, and stopped at the end only
if the demo started it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.ops import procs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run broker, worker, command centre, simulator and dispatch feed together"
    )
    from streams.edge.simulator import SCENARIOS  # a tuple of names: nothing runs on import

    p.add_argument(
        "--scenario", choices=SCENARIOS, default="surge", help="simulator scenario (default: surge)"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=10.0,
        help="how many times faster the scenario's story runs; readings carry wall-clock times",
    )
    p.add_argument(
        "--clock",
        type=_clock,
        default="17:30",
        metavar="HH:MM|now",
        help="the station's local time the story starts at (default: 17:30, the evening peak; "
        "now: the station's time now)",
    )
    p.add_argument("--duration", type=float, help="stop after this many wall-clock seconds")
    p.set_defaults(func=run)


def _clock(text: str) -> str:
    """``--clock``: a time of day, or ``now`` (the story follows the station's clock).

    >>> _clock("now"), _clock("08:30")
    ('now', '08:30')
    """
    from streams.commands.simulate import _local_time

    return text if text == "now" else _local_time(text).strftime("%H:%M")


def _story(clock: str, site_file: Path) -> str:
    """When the story starts, on the station's clock, its time zone named (the machine's may
    differ).

    >>> from streams.config.paths import bundled_site
    >>> _story("17:30", bundled_site()), _story("now", bundled_site())
    ('from 17:30 station time (Asia/Shanghai)', "from the station's time now (Asia/Shanghai)")
    """
    from streams.config.site import load_site

    tz = load_site(site_file).site.timezone
    start = f"{clock} station time" if clock != "now" else "the station's time now"
    return f"from {start} ({tz})"


def _spawn(
    name: str,
    args: list[str],
    log_dir: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: int | None = None,
) -> subprocess.Popen:
    out = open(log_dir / f"{name}.log", "w") if log_dir else None  # noqa: SIM115
    argv = [sys.executable, "-m", "streams.cli", *args]
    return procs.spawn(argv, log=out, env=env, stdin=stdin)


def _wait_for(
    url: str, name: str, proc: subprocess.Popen, log_dir: Path, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # which log, and its end: "see its log" named none
            raise SystemExit(_exited(name, proc.returncode, log_dir))
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"demo: the {name} did not answer at {url} in {timeout_s:.0f}s")


def _say(*parts: str) -> None:
    """Print to the terminal, or to nowhere once it is gone: under ``| tee``, Ctrl-C ends tee
    too, and a broken pipe must not stop the demo from stopping what it started."""
    try:
        print(*parts, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process


def _port_free(port: int) -> bool:
    """No process listens on ``port``. SO_REUSEADDR as the servers bind: the connections of a
    demo just stopped (TIME_WAIT, 60 s) must not make the next one say a demo is running."""
    # A bind, not kafka_local._port_in_use's connect: whether our servers can bind it.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run(args: argparse.Namespace) -> int:
    # A process started in the background by a script inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt for it: the demo is for a terminal, so Ctrl-C must stop it
    # wherever it was started from; SIGTERM (kill, a supervisor) stops everything the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from streams.config.settings import env_names, get_settings
    from streams.ops.kafka_local import BrokerConfig, KafkaLocalError, down, status, up

    settings = get_settings()
    taken = [p for p in (settings.centre_port, settings.web_port) if not _port_free(p)]
    if taken:  # before anything starts: a second demo must not report the first one's page
        raise SystemExit(
            f"demo: port {', '.join(map(str, taken))} on 127.0.0.1 is in use — is a demo "
            "already running? Stop it (Ctrl-C in its terminal), or set CROWDSAFE_CENTRE_PORT "
            "and CROWDSAFE_WEB_PORT for a second one"
        )
    log_dir = settings.state_dir / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    broker = None
    env = dict(os.environ)
    children: dict[str, subprocess.Popen] = {}
    try:
        if not any(env.get(name) for name in env_names("kafka_bootstrap")):
            config = BrokerConfig.from_settings(settings)
            # The children reach the broker the demo runs, also on a CROWDSAFE_KAFKA_PORT of its
            # own (the default bootstrap is 127.0.0.1:9092, whatever the port).
            env["KAFKA_BOOTSTRAP"] = config.bootstrap
            if not status(config).running:
                try:  # Ctrl-C during the start-up stops the half-started broker (kafka_local.up)
                    up(config, log=_say)
                except KafkaLocalError as exc:
                    raise SystemExit(f"demo: {exc}") from exc
                broker = config
        # Simulated data: its CAP messages say Exercise, never Actual.
        exercise = {**env, "CROWDSAFE_EXERCISE": "1"}
        worker = children["worker"] = _spawn("worker", ["worker"], log_dir, env=exercise)
        metrics = f"http://127.0.0.1:{settings.web_port}/metrics"
        _say(f"demo: starting the worker (log {log_dir / 'worker.log'}) ...")
        _wait_for(metrics, "worker", worker, log_dir)
        # The command centre, with an operator token for this run (or the one set already).
        token = os.environ.get("CROWDSAFE_TOKEN") or secrets.token_urlsafe(18)
        # The page says "simulated ×N" rather than "live": this run's readings are the story.
        centre_env = {**env, "CROWDSAFE_TOKEN": token,
                      "CROWDSAFE_CENTRE_SIMULATION_SPEED": str(args.speed)}  # fmt: skip
        centre = children["centre"] = _spawn("centre", ["centre"], log_dir, env=centre_env)
        url = f"http://127.0.0.1:{settings.centre_port}/"
        _wait_for(url + "health", "centre", centre, log_dir)
        # The police console, a fresh group from the latest offset: this run's incidents only
        # (it reads no commands: the demo's terminal is for Ctrl-C; open another console to act).
        group = f"demo-dispatch-{int(time.time())}"
        feed = ["dispatch", "--route", "police", "--group", group, "--from", "latest"]
        children["dispatch"] = _spawn("dispatch", feed, env=env, stdin=subprocess.DEVNULL)
        time.sleep(3)  # let the feed join its group before the first alert can exist
        sim = ["simulate", "--scenario", args.scenario, "--speed", str(args.speed), "--repeat"]
        if args.clock != "now":  # without --clock the story starts at the station's time now
            sim += ["--clock", args.clock]
        children["simulate"] = _spawn("simulate", sim, log_dir, env=env)
        _say(f"demo: command centre at {url}  ·  worker metrics at {metrics}")
        if os.environ.get("CROWDSAFE_TOKEN"):
            _say("demo: log in there with your CROWDSAFE_TOKEN (an operator)")
        else:
            _say(f"demo: log in there with the operator token {token} "
                  "(this run only; `crowdsafe users add` makes lasting users)")  # fmt: skip
        _say(
            f"demo: simulating '{args.scenario}' {_story(args.clock, settings.site)}, "
            f"{args.speed:g}x faster than the clock (the page says 'simulated ×{args.speed:g}')"
        )
        _say("demo: the police console (crowdsafe dispatch --route police), in station time:")
        deadline = time.monotonic() + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            for name, proc in children.items():
                if proc.poll() is not None:
                    raise SystemExit(_exited(name, proc.returncode, log_dir))
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("\ndemo: stopping ...")
    finally:
        # A second Ctrl-C (or SIGTERM) while stopping must not leave the broker running: each
        # stop below is bounded (20 s, then SIGKILL).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in procs.stop_all(list(children.values())):
            name = next(n for n, p in children.items() if p is proc)
            _say(f"demo: {name} did not stop within 20 s of SIGTERM: killed")
        if broker is not None:
            down(broker, log=_say)  # _say: under `| tee`, tee may be gone by now
    _say("demo: stopped everything it started")
    return 0


def _exited(name: str, status: int, log_dir: Path) -> str:
    """Which process stopped, how, and the end of its log."""
    from streams.ops.kafka_local import read_tail

    log = log_dir / f"{name}.log"
    tail = ""
    if log.exists():
        lines = read_tail(log).splitlines()[-12:]
        tail = "\n" + "\n".join(f"  | {line[:200]}" for line in lines)
    return f"demo: the {name} exited with status {status}; its log: {log}{tail}"
