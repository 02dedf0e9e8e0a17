"""Is this worker really processing? The agent reports here; ``/health`` and the metrics read it.

A worker whose agent has stopped must not look alive: ``/health`` answers 503 then, and the
agent's crash stops the process (see :mod:`streams.worker.agent`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Health:
    agent_running: bool = False
    started_at: float | None = None  # wall clock, s
    last_batch_at: float | None = None
    batches: int = 0

    def agent_started(self) -> None:
        self.agent_running, self.started_at = True, time.time()

    def agent_stopped(self) -> None:
        self.agent_running = False

    def batch_done(self) -> None:
        self.last_batch_at = time.time()
        self.batches += 1

    def report(self, now: float | None = None) -> tuple[int, dict]:
        """(HTTP status, body): 200 while the agent runs, else 503.

        >>> h = Health()
        >>> h.report(0.0)[0]
        503
        >>> h.agent_started(); h.batch_done()
        >>> status, body = h.report()
        >>> status, body["agent"], body["batches"]
        (200, 'running', 1)
        """
        now = time.time() if now is None else now
        age = None if self.last_batch_at is None else round(now - self.last_batch_at, 3)
        body = {
            "status": "ok" if self.agent_running else "down",
            "agent": "running" if self.agent_running else "stopped",
            "batches": self.batches,
            "last_batch_age_s": age,
        }
        return (200 if self.agent_running else 503), body
