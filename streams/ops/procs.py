"""Child processes in their own process groups, stopped by pid: one helper for the local broker,
``crowdsafe demo`` and the test harness (:mod:`streams.testing`).

Each child leads its own session (``start_new_session``), so its pgid is its pid and a signal
to the group reaches what it started too (the broker's JVM, a worker's threads).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO


def spawn(
    argv: Sequence[str],
    *,
    log: IO | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: int | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in a new session, output to ``log`` (or inherited)."""
    return subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, stopped but not reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def rss_mb(pid: int) -> float | None:
    """The resident memory of ``pid`` in MiB (``VmRSS``), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid`` (or the process alone if that is refused)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def stop(target: subprocess.Popen | int, grace_s: float = 20.0) -> bool:
    """SIGTERM the group, SIGKILL it after ``grace_s``; True if it had to be killed.

    A :class:`subprocess.Popen` is also reaped (waited for), so it leaves no zombie.
    """
    proc = target if isinstance(target, subprocess.Popen) else None
    pid = proc.pid if proc is not None else int(target)

    def running() -> bool:
        return proc.poll() is None if proc is not None else alive(pid)

    if not running():
        return False
    signal_group(pid, signal.SIGTERM)
    if _wait(running, grace_s):
        return False
    signal_group(pid, signal.SIGKILL)
    _wait(running, 10.0)
    return True


def stop_all(targets: list[subprocess.Popen], grace_s: float = 20.0) -> list[subprocess.Popen]:
    """SIGTERM every group at once, SIGKILL those still running after ``grace_s`` (one grace
    for all, not one each: four children stop within ~grace_s, not 4 x grace_s); those killed.

    >>> import sys
    >>> quick = spawn([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> stop_all([quick], grace_s=5)
    []
    >>> quick.returncode != 0
    True
    """
    running = [p for p in targets if p.poll() is None]
    for proc in running:
        signal_group(proc.pid, signal.SIGTERM)
    _wait(lambda: any(p.poll() is None for p in running), grace_s)
    killed = [p for p in running if p.poll() is None]
    for proc in killed:
        signal_group(proc.pid, signal.SIGKILL)
    _wait(lambda: any(p.poll() is None for p in killed), 10.0)
    return killed


def _wait(running, timeout_s: float) -> bool:
    """Poll until ``running()`` is false; True if it stopped within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not running():
            return True
        time.sleep(0.1)
    return not running()
