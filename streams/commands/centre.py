"""``crowdsafe centre``: the command centre: the site's live view from the topics, its page,
API and event stream on ``CROWDSAFE_CENTRE_PORT`` (README "Command centre")."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "centre",
        help="run the command centre (page, API, event stream) built from the topics",
        description="Reads crowd.zone-state, crowd.alerts, crowd.alerts.ack and crowd.silences "
        "(every partition, no consumer group) and serves the page and its API on "
        "CROWDSAFE_CENTRE_HOST:CROWDSAFE_CENTRE_PORT (default 127.0.0.1:6066). Users: "
        "`crowdsafe users add NAME --role ROLE`; CROWDSAFE_TOKEN is an operator token.",
    )
    p.add_argument("--site", type=Path, help="site file (default: CROWDSAFE_SITE)")
    p.add_argument(
        "--loglevel", default="info", choices=["debug", "info", "warning", "error"],
        help="log level (default: info)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from aiohttp import web

    from streams.centre.auth import Authenticator, read_users
    from streams.centre.metrics import CentreMetrics
    from streams.centre.reader import Feed, Reader
    from streams.centre.server import CENTRE, build_app
    from streams.centre.view import CentreView
    from streams.config.settings import get_settings
    from streams.config.site import load_site

    logging.basicConfig(
        level=args.loglevel.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)  # its slow-task notes
    log = logging.getLogger("streams.centre")
    settings = get_settings()
    site = load_site(args.site or settings.site)
    users_file = settings.centre_users_file
    token = settings.token.get_secret_value() if settings.token else None
    users = read_users(users_file)  # a broken users file fails here, with its path
    if not users and not token:
        log.warning("no users in %s and no CROWDSAFE_TOKEN: nobody can log in "
                    "(crowdsafe users add NAME --role operator)", users_file)  # fmt: skip
    else:
        log.info("%d user(s) in %s%s", len(users), users_file,
                 "; CROWDSAFE_TOKEN accepted as 'operator'" if token else "")  # fmt: skip

    view = CentreView(site, settings.centre_stale_after_s, settings.centre_open_data_hours)
    feed = Feed(view)
    metrics = CentreMetrics(feed)
    auth = Authenticator(users_file, token, settings.centre_session_idle_s)
    app = build_app(settings, site, feed, auth, metrics)
    centre = app[CENTRE]

    def publish(kind: str, data: dict) -> None:
        if centre.hub is not None:
            centre.hub.publish_threadsafe(kind, data)

    reader = centre.reader = Reader(settings, feed, publish)

    async def start_reader(app: web.Application) -> None:
        reader.start()  # after the hub exists: no event is lost to a missing hub

    async def stop_reader(app: web.Application) -> None:
        reader.stop()

    app.on_startup.append(start_reader)
    app.on_shutdown.append(stop_reader)
    host, port = settings.centre_host, settings.centre_port
    url = f"http://{host}:{port}/"
    web.run_app(
        app, host=host, port=port, access_log=None, shutdown_timeout=5,
        print=lambda _: print(f"centre ready: {url} (site {site.site.id})", flush=True),
    )  # fmt: skip
    reader.join(10)
    return 0
