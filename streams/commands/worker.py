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
    ensure_app_topics(settings)
    settings.worker_state_dir.mkdir(parents=True, exist_ok=True)
    faust.Worker(worker.faust, loglevel=args.loglevel.upper()).execute_from_commandline()
    return 0
