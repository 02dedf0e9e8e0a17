"""``crowdsafe demo`` as a user runs it: alerts appear, the command centre answers (to its
operator token only), Ctrl-C stops it all."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)


def _processes_with(app_id: str) -> list[int]:
    """Live processes whose environment carries this demo's app id."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if app_id.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _kill_leftovers(proc: subprocess.Popen, app_id: str) -> list[int]:
    """Kill ``proc``'s group if it still runs, then whatever the demo left running (nothing, if
    it works), also on failure; the pids that were left."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    time.sleep(0.5)  # children reaped by the demo a moment after it exits
    leftover = _processes_with(app_id)
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftover


def _logs(pipeline) -> str:
    """The end of each of the demo's logs, for a failure's message."""
    out = []
    for log in sorted((pipeline.tmp / "state" / "demo").glob("*.log")):
        out.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "\n".join(out)


def _ps(pipeline) -> str:
    """The demo's processes still running, with their state (a failure's message)."""
    app = pipeline.env["CROWDSAFE_APP_ID"]
    ps = subprocess.run(["ps", "-eo", "pid,pgid,stat,etime,args"], capture_output=True, text=True)
    return "\n--- still running\n" + "\n".join(
        ln[:200] for ln in ps.stdout.splitlines() if app in ln or "streams.cli" in ln
    )


def test_demo_shows_alerts_as_they_happen_and_ctrl_c_stops_everything(pipeline):
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--speed", "20"],
        env=pipeline.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 300  # a hang guard (~35 s on an idle machine), not a speed limit
    try:
        # the police console: the east entrance's incident once it is critical
        while not ("CRITICAL" in "".join(seen) and "East entrance security check" in "".join(seen)):
            assert time.monotonic() < deadline, "".join(seen) + _logs(pipeline)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert demo.poll() is None, "".join(seen)
        centre = f"http://127.0.0.1:{pipeline.env['CROWDSAFE_CENTRE_PORT']}/"
        assert any(f"command centre at {centre}" in ln for ln in seen)
        # the story's start on the station's clock, whatever the machine's zone, and its speed
        story = "from 17:30 station time (Asia/Shanghai), 20x faster than the clock"
        assert any(story in ln for ln in seen), "".join(seen)
        # the centre wants a login: the demo's operator token, printed once
        token = next(ln for ln in seen if "log in there with the operator token" in ln).split()[8]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(centre + "api/zones", timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(
            centre + "api/zones", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            zones = json.load(resp)["zones"]
            assert len(zones) == 14
        # the page is told its readings are the simulator's, 20x: it says so instead of "live"
        request = urllib.request.Request(
            centre + "api/site", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.load(resp)["clock"] == {"simulated": True, "speed": 20.0}
        # demo + 4 children: worker, centre, dispatch feed, simulator
        assert len(_processes_with(pipeline.env["CROWDSAFE_APP_ID"])) >= 5

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
        try:
            assert demo.wait(60) == 0
        except subprocess.TimeoutExpired:
            time.sleep(1)
            tail = []
            while not lines.empty():
                tail.append(lines.get())
            pytest.fail(
                "the demo did not stop within 60 s of Ctrl-C; its output:\n"
                + "".join((seen + tail)[-30:])
                + _logs(pipeline)
                + _ps(pipeline)
            )
    finally:
        leftover = _kill_leftovers(demo, pipeline.env["CROWDSAFE_APP_ID"])
    while not lines.empty():
        seen.append(lines.get())
    assert "demo: stopped everything it started" in "".join(seen)
    assert leftover == []


def test_a_second_demo_says_one_is_running_and_starts_nothing(pipeline):
    import socket

    with socket.socket() as held:  # what the first demo's command centre holds
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {**pipeline.env, "CROWDSAFE_CENTRE_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", "demo"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use — is a demo already running?" in result.stderr
    assert _processes_with(pipeline.env["CROWDSAFE_APP_ID"]) == []  # nothing was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "stampede"], "invalid choice: 'stampede'"),
        (["--clock", "25:00"], "argument --clock: not a time of day (HH:MM): '25:00'"),
    ],
)
def test_a_bad_option_is_refused_before_anything_starts(pipeline, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", *args],
        env=pipeline.env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert _processes_with(pipeline.env["CROWDSAFE_APP_ID"]) == []  # nothing was started


def test_ctrl_c_under_tee_stops_everything_without_a_traceback(pipeline, tmp_path):
    """``crowdsafe demo | tee log`` then Ctrl-C: tee dies with the demo, so the demo's last
    lines meet a broken pipe; it still stops everything it started, and says nothing ugly."""
    out, err = tmp_path / "tee.log", tmp_path / "stderr.log"
    cmd = f"{sys.executable} -m streams.cli demo --speed 20 2>{err} | tee {out}"
    shell = subprocess.Popen(
        ["bash", "-c", cmd], env=pipeline.env, cwd=ROOT, stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    app = pipeline.env["CROWDSAFE_APP_ID"]
    try:
        deadline = time.monotonic() + 300  # a hang guard
        while not (out.exists() and "command centre at" in out.read_text()):
            assert time.monotonic() < deadline and shell.poll() is None, _logs(pipeline)
            time.sleep(0.5)
        os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group, tee too
        try:
            shell.wait(90)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the demo did not stop within 90 s of Ctrl-C:\n"
                + out.read_text()[-3000:]
                + err.read_text()[-3000:]
                + _logs(pipeline)
                + _ps(pipeline)
            )
        time.sleep(0.5)
    finally:
        leftover = _kill_leftovers(shell, app)
    assert leftover == []
    assert "Traceback" not in err.read_text(), err.read_text()[-2000:]


def test_sigterm_stops_the_demo_and_everything_it_started(pipeline, tmp_path):
    """``kill <demo>`` (a supervisor, a closed session): the demo stops its children as it does
    on Ctrl-C (before, it died alone and left four processes running)."""
    out = tmp_path / "out.log"
    with out.open("w") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--speed", "20"], env=pipeline.env,
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    app = pipeline.env["CROWDSAFE_APP_ID"]
    try:
        deadline = time.monotonic() + 300  # a hang guard
        while "demo: simulating" not in out.read_text():
            assert time.monotonic() < deadline and demo.poll() is None, _logs(pipeline)
            time.sleep(0.5)
        assert len(_processes_with(app)) >= 5  # the demo and its four children
        os.kill(demo.pid, signal.SIGTERM)  # the demo alone, not its group
        try:
            assert demo.wait(60) == 0, out.read_text()[-3000:]
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the demo did not stop within 60 s of SIGTERM" + _logs(pipeline) + _ps(pipeline)
            )
        time.sleep(0.5)
    finally:
        leftover = _kill_leftovers(demo, app)
    assert leftover == []
    assert "demo: stopped everything it started" in out.read_text()
