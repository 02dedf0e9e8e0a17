"""``crowdsafe worker``: the Faust worker that turns readings into zone state and alerts."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the stream-processing worker")
    p.add_argument(
        "--loglevel",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level of the worker (default: info)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import faust

    from streams.config.settings import get_settings
    from streams.ops.topics import ensure_app_topics
    from streams.worker.app import build_app

    settings = get_settings()
    worker = build_app(settings)  # a bad site file fails here, before touching the broker
    ensure_app_topics(settings, site=worker.site)  # loaded once: 100,000 zones take seconds
    settings.worker_state_dir.mkdir(parents=True, exist_ok=True)
    bounded_worker(faust, settings.stop_timeout_s)(
        worker.faust, loglevel=args.loglevel.upper()
    ).execute_from_commandline()
    return 0


def bounded_worker(faust, stop_timeout_s: float):
    """A Faust worker class whose stop is bounded: the first SIGTERM or SIGINT starts a clock,
    and a worker still running ``stop_timeout_s`` later exits hard (status 70) instead of
    hanging on a client that waits for an unreachable broker. At-least-once holds: what was not
    committed is re-delivered, and re-delivered readings are recognised by their ``seq``."""
    import os
    import signal
    import sys
    import threading

    class Worker(faust.Worker):
        _stop_clock: threading.Timer | None = None

        def _arm(self) -> None:
            if self._stop_clock is None:

                def expire() -> None:
                    print(
                        f"worker: still stopping after {stop_timeout_s:g} s "
                        "(CROWDSAFE_STOP_TIMEOUT_S): exiting now",
                        file=sys.stderr,
                        flush=True,
                    )
                    os._exit(70)

                self._stop_clock = threading.Timer(stop_timeout_s, expire)
                self._stop_clock.daemon = True
                self._stop_clock.start()

        def _schedule_shutdown(self, signal: signal.Signals) -> None:
            self._arm()
            super()._schedule_shutdown(signal)

    return Worker
