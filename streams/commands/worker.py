"""``crowdsafe worker``: the Faust worker that turns readings into zone state and alerts."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the stream-processing worker")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import faust

    from streams.settings import get_settings
    from streams.topics_admin import app_topics, ensure_topics

    settings = get_settings()
    ensure_topics(settings.kafka_bootstrap, app_topics(settings))
    (settings.state_dir / "worker").mkdir(parents=True, exist_ok=True)
    from streams import views  # noqa: F401  (registers the web pages on the app)
    from streams.app import app

    faust.Worker(app, loglevel=args.loglevel.upper()).execute_from_commandline()
    return 0
