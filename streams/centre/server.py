"""The command centre's HTTP server (aiohttp): the page, its JSON API, the event stream, the
people's actions (to ``crowd.alerts.ack`` and ``crowd.silences``), open data, health and metrics.

The API (README "Command centre"); every ``/api/*`` needs a login (a session cookie from
``POST /login``, or ``Authorization: Bearer <token>``): 401 without one, 403 for a role without
the right. ``/``, ``/login``, ``/health``, ``/metrics`` and ``/open/*`` are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import msgspec
from aiohttp import web

from streams.centre.auth import Authenticator, Role, User
from streams.centre.metrics import CentreMetrics
from streams.centre.reader import Feed, now_ms
from streams.config.settings import Settings
from streams.config.site import Site
from streams.schema.incident import Ack, Silence

log = logging.getLogger(__name__)

COOKIE = "crowdsafe_session"
HEARTBEAT_S = 15.0
CLIENT_QUEUE = 2000  # events a slow client may fall behind before it is dropped (it reconnects)
OPEN_DATA_COLUMNS = (
    "hour_start", "zone_id", "zone_name", "mean_density", "peak_density", "samples"
)  # fmt: skip

USER = web.RequestKey("user", User)  # the request's authenticated User


@dataclass
class Centre:
    """Everything the handlers use, one object on the app (``app[CENTRE]``)."""

    settings: Settings
    site: Site
    feed: Feed
    auth: Authenticator
    metrics: CentreMetrics
    actions: Actions
    hub: Hub | None = None
    reader: threading.Thread | None = None


CENTRE = web.AppKey("centre", Centre)


class Hub:
    """The event stream's clients: one queue each, fed from the reader thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics: CentreMetrics) -> None:
        self.loop, self.metrics = loop, metrics
        self.clients: set[asyncio.Queue] = set()

    def publish_threadsafe(self, kind: str, data: dict) -> None:
        """Called by the reader thread for each record that changed something."""
        text = f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
            self.loop.call_soon_threadsafe(self._publish, text.encode())

    def _publish(self, chunk: bytes) -> None:
        for q in list(self.clients):
            try:
                q.put_nowait(chunk)
            except asyncio.QueueFull:  # too slow: drop it (its EventSource reconnects)
                self._end(q)
        self.metrics.sse_clients.set(len(self.clients))

    def _end(self, q: asyncio.Queue) -> None:
        """Make a client's stream end (an empty chunk), dropping what it had not taken."""
        self.clients.discard(q)
        while not q.empty():
            q.get_nowait()
        q.put_nowait(b"")

    def close_all(self) -> None:
        for q in list(self.clients):
            self._end(q)


class Actions:
    """Sends people's actions to Kafka (kafka-python, keyed by zone id: murmur2)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = None

    def _send(self, topic: str, key: str, value: bytes) -> dict:
        from streams.dispatch import clients

        if self._producer is None:
            self._producer = clients.producer(self.settings)
        md = clients.send(self._producer, topic, key, value)
        return {"topic": topic, "partition": md.partition, "offset": md.offset}

    async def send(self, topic: str, key: str, struct: Any) -> dict:
        value = msgspec.json.encode(struct)
        return await asyncio.get_running_loop().run_in_executor(None, self._send, topic, key, value)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def build_app(
    settings: Settings,
    site: Site,
    feed: Feed,
    auth: Authenticator,
    metrics: CentreMetrics,
    actions: Actions | None = None,
) -> web.Application:
    """The centre's aiohttp application over ``feed`` (filled by the reader). ``app[CENTRE].hub``
    is set on startup (it needs the running loop): the reader publishes through it."""
    centre = Centre(settings, site, feed, auth, metrics, actions or Actions(settings))
    app = web.Application(middlewares=[_auth_middleware(auth)], client_max_size=64 * 1024)
    app[CENTRE] = centre

    async def on_startup(app: web.Application) -> None:
        centre.hub = Hub(asyncio.get_running_loop(), metrics)

    async def on_shutdown(app: web.Application) -> None:
        if centre.hub is not None:
            centre.hub.close_all()  # end the event streams: nothing waits on them

    async def on_cleanup(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, centre.actions.close)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_get("/", page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/api/me", me)
    r.add_get("/api/site", site_info)
    r.add_get("/api/zones", zones)
    r.add_get("/api/incidents", incidents)
    r.add_get("/api/silences", silences)
    r.add_get("/api/events", events)
    r.add_post("/api/ack", ack)
    r.add_post("/api/resolve", resolve)
    r.add_post("/api/silence", silence)
    r.add_post("/api/manual", manual)
    r.add_get("/open/occupancy.csv", occupancy_csv)
    r.add_get("/health", health)
    r.add_get("/metrics", metrics_view)
    return app


# --- authentication ---------------------------------------------------------------------------


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _auth_middleware(auth: Authenticator):
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable]):
        if not request.path.startswith("/api/"):
            return await handler(request)
        token = _bearer(request)
        if token is not None:
            loop = asyncio.get_running_loop()  # scrypt: off the loop
            user = await loop.run_in_executor(None, auth.user_for_token, token)
        else:
            user = auth.session_user(request.cookies.get(COOKIE))
            if user is not None and request.method == "POST" and not _same_origin(request):
                return _error(403, "cross-site request refused")
        if user is None:
            request.app[CENTRE].metrics.refused.labels("401").inc()
            return _error(401, "login needed")
        request[USER] = user
        return await handler(request)

    return middleware


def _same_origin(request: web.Request) -> bool:
    """A cookie-authenticated POST from a page of another origin is refused (SameSite=Strict
    already keeps the cookie off it in browsers; this is the second lock)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.host


def _require(request: web.Request, role: Role) -> User | web.Response:
    user: User = request[USER]
    if not user.may(role):
        request.app[CENTRE].metrics.refused.labels("403").inc()
        return _error(403, f"{user.name} is a {user.role}; this needs a {role}")
    return user


async def _body(request: web.Request) -> dict:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "body is not JSON"}), content_type="application/json"
            ) from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "body must be a JSON object"}),
                content_type="application/json",
            )
        return data
    return dict(await request.post())


async def login(request: web.Request) -> web.StreamResponse:
    """Form field ``token`` (303 to ``/``) or JSON ``{"token"}`` (204): sets the session
    cookie. A wrong token: 401."""
    is_json = request.content_type == "application/json"
    data = await _body(request)
    token = data.get("token")
    auth: Authenticator = request.app[CENTRE].auth
    user = None
    if isinstance(token, str):
        user = await asyncio.get_running_loop().run_in_executor(
            None, auth.user_for_token, token.strip()
        )
    if user is None:
        request.app[CENTRE].metrics.logins.labels("refused").inc()
        log.info("login refused from %s", request.remote)
        return _error(401, "unknown token")
    request.app[CENTRE].metrics.logins.labels("ok").inc()
    log.info("login: %s (%s)", user.name, user.role)
    response: web.StreamResponse = (
        web.Response(status=204) if is_json else web.Response(status=303, headers={"Location": "/"})
    )
    response.set_cookie(
        COOKIE,
        auth.open_session(user),
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.secure,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[CENTRE].auth.close_session(request.cookies.get(COOKIE))
    is_json = request.content_type == "application/json"
    response: web.StreamResponse = (
        web.Response(status=204) if is_json else web.Response(status=303, headers={"Location": "/"})
    )
    response.del_cookie(COOKIE, path="/")
    return response


# --- reading ----------------------------------------------------------------------------------


async def page(request: web.Request) -> web.Response:
    # Package data (pyproject: [tool.setuptools.package-data]). The page holds no data: it
    # asks the API, which needs a login.
    html = files("streams.centre").joinpath("web", "index.html").read_text()
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def me(request: web.Request) -> web.Response:
    user: User = request[USER]
    return web.json_response({"name": user.name, "role": user.role})


def _stale_after_s(request: web.Request) -> float:
    return request.app[CENTRE].feed.view.stale_after_s


async def site_info(request: web.Request) -> web.Response:
    site: Site = request.app[CENTRE].site
    zones = []
    for z in site.zones:
        t = site.thresholds(z)
        zones.append({
            "id": z.id, "name": z.name, "name_zh": z.name_zh, "kind": z.kind,
            "area_m2": z.area_m2, "warning": t.warning, "critical": t.critical,
            "polygon": [list(p) for p in z.polygon] if z.polygon else None,
            "response_plan": z.response_plan, "response_plan_zh": z.response_plan_zh,
        })  # fmt: skip
    s = site.site
    return web.json_response({
        "site": {"id": s.id, "name": s.name, "name_zh": s.name_zh, "timezone": s.timezone,
                 "language": s.language},
        "stale_after_s": _stale_after_s(request),
        "clock": _clock(request.app[CENTRE].settings),
        "max_silence_s": site.incidents.max_silence_s,
        "zones": zones,
    })  # fmt: skip


def _clock(settings: Settings) -> dict[str, Any]:
    """What the page's header says about time: live readings, or a simulation and its speed
    (event times are the wall clock either way; the simulator compresses its story instead).

    >>> _clock(Settings(centre_simulation_speed=10))
    {'simulated': True, 'speed': 10.0}
    >>> _clock(Settings())
    {'simulated': False, 'speed': None}
    """
    speed = settings.centre_simulation_speed
    return {"simulated": speed is not None, "speed": speed or None}


async def zones(request: web.Request) -> web.Response:
    feed: Feed = request.app[CENTRE].feed
    now = now_ms()
    with feed.lock:
        found = feed.view.zones(now)
    return web.json_response({
        "site": request.app[CENTRE].site.site.name,
        "now": now,
        "stale_after_s": _stale_after_s(request),
        "zones": found,
    })  # fmt: skip


async def incidents(request: web.Request) -> web.Response:
    feed: Feed = request.app[CENTRE].feed
    with feed.lock:
        found = feed.view.incidents()
    return web.json_response({"incidents": found})


async def silences(request: web.Request) -> web.Response:
    feed: Feed = request.app[CENTRE].feed
    with feed.lock:
        found = feed.view.silences(now_ms())
    return web.json_response({"silences": found})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``hello`` on connect, then ``zone``, ``incident`` and ``silence``
    as the reader sees them, and a comment every 15 s."""
    hub: Hub = request.app[CENTRE].hub
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(CLIENT_QUEUE)
    hub.clients.add(queue)
    hub.metrics.sse_clients.set(len(hub.clients))
    try:
        await response.write(f"event: hello\ndata: {json.dumps({'now': now_ms()})}\n\n".encode())
        while True:
            try:
                chunk = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                chunk = b": heartbeat\n\n"
            if chunk == b"":  # dropped as too slow, or the centre is stopping
                break
            await response.write(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.clients.discard(queue)
        hub.metrics.sse_clients.set(len(hub.clients))
    return response


# --- acting -----------------------------------------------------------------------------------


def _text(data: dict, name: str, required: bool = False, limit: int = 1000) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ValueError(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{name} must be text of at most {limit} characters")
    if required and not value.strip():
        raise ValueError(f"{name} is required")
    return value


def _accepted(sent: Any, where: dict) -> web.Response:
    return web.json_response({"sent": msgspec.to_builtins(sent), "at": where}, status=202)


async def _send(request: web.Request, topic: str, key: str, struct: Any) -> web.Response:
    try:
        where = await request.app[CENTRE].actions.send(topic, key, struct)
    except Exception as exc:  # noqa: BLE001 - the broker refused or is unreachable
        log.warning("could not send to %s: %s", topic, exc)
        return _error(503, f"could not send to Kafka: {type(exc).__name__}")
    request.app[CENTRE].metrics.actions.labels(topic).inc()
    return _accepted(struct, where)


async def ack(request: web.Request) -> web.Response:
    return await incident_action(request, "ack")


async def resolve(request: web.Request) -> web.Response:
    return await incident_action(request, "resolve")


async def incident_action(request: web.Request, action: str) -> web.Response:
    """``ack`` (operator) or ``resolve`` (supervisor) one open incident."""
    user = _require(request, "supervisor" if action == "resolve" else "operator")
    if isinstance(user, web.Response):
        return user
    data = await _body(request)
    try:
        incident_id = _text(data, "incident_id", required=True, limit=300)
        note = _text(data, "note")
    except ValueError as exc:
        return _error(400, str(exc))
    feed: Feed = request.app[CENTRE].feed
    with feed.lock:
        record = next((r for r in feed.view.incidents() if r["incident_id"] == incident_id), None)
    if record is None:
        return _error(404, f"no open incident {incident_id!r}")
    if action == "resolve":
        sensed = [m for m in record.get("members", []) if m.get("state") != "cleared"
                  and m.get("kind") != "manual"]  # fmt: skip
        if record.get("state") != "cleared" and sensed:
            return _error(409, "it can be resolved once every alert of it has cleared")
    ack = Ack(incident_id=incident_id, by=user.name, ts=now_ms(), action=action, note=note)
    settings: Settings = request.app[CENTRE].settings
    return await _send(request, settings.acks_topic, record["zone_id"], ack)


async def _zone_action(
    request: web.Request, role: Role, texts: dict[str, tuple[bool, int]]
) -> tuple[User, dict, dict] | web.Response:
    """The user (who must have ``role``), the body, and its ``texts`` (name -> (required,
    longest)) checked, ``zone_id`` a zone of the site; or the refusal."""
    user = _require(request, role)
    if isinstance(user, web.Response):
        return user
    data = await _body(request)
    try:
        fields = {name: _text(data, name, req, limit) for name, (req, limit) in texts.items()}
    except ValueError as exc:
        return _error(400, str(exc))
    if fields["zone_id"] not in request.app[CENTRE].site.zone_by_id:
        return _error(400, f"unknown zone {fields['zone_id']!r}")
    return user, data, fields


async def manual(request: web.Request) -> web.Response:
    """A person raises an incident on a zone (operator)."""
    found = await _zone_action(request, "operator", {"zone_id": (True, 128), "note": (True, 1000)})
    if isinstance(found, web.Response):
        return found
    user, data, fields = found
    severity = data.get("severity")
    if severity not in ("warning", "critical"):
        return _error(400, "severity must be warning or critical")
    zone_id = fields["zone_id"]
    ack = Ack(incident_id=zone_id, by=user.name, ts=now_ms(), action="raise",
              note=fields["note"], severity=severity)  # fmt: skip
    return await _send(request, request.app[CENTRE].settings.acks_topic, zone_id, ack)


async def silence(request: web.Request) -> web.Response:
    """Silence a zone (or one source of it) for some minutes (supervisor)."""
    texts = {"zone_id": (True, 128), "source_id": (False, 128), "reason": (True, 1000)}
    found = await _zone_action(request, "supervisor", texts)
    if isinstance(found, web.Response):
        return found
    user, data, fields = found
    site: Site = request.app[CENTRE].site
    zone_id, source_id = fields["zone_id"], fields["source_id"]
    if source_id is not None and source_id not in [
        s.id for s in site.sources if zone_id in s.zones
    ]:
        return _error(400, f"{source_id!r} is no source of zone {zone_id!r}")
    minutes = data.get("minutes")
    if isinstance(minutes, str):
        with contextlib.suppress(ValueError):
            minutes = float(minutes)
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0:
        return _error(400, "minutes must be a number above 0")
    longest = site.incidents.max_silence_s
    if minutes * 60 > longest:
        return _error(400, f"a silence lasts at most {longest / 60:g} minutes "
                           "(site file [incidents] max_silence_s)")  # fmt: skip
    now = now_ms()
    record = Silence(
        silence_id=f"sil-{uuid.uuid4().hex[:12]}", zone_id=zone_id, source_id=source_id,
        by=user.name, reason=fields["reason"], ts=now, starts_at=now,
        ends_at=now + int(minutes * 60_000),
    )  # fmt: skip
    return await _send(request, request.app[CENTRE].settings.silences_topic, zone_id, record)


# --- open ---------------------------------------------------------------------------------------


async def occupancy_csv(request: web.Request) -> web.Response:
    """Hourly mean and peak density per zone, hours that ended at least an hour ago."""
    feed: Feed = request.app[CENTRE].feed
    with feed.lock:
        rows = feed.view.occupancy_rows(now_ms())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=OPEN_DATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "mean_density": f"{row['mean_density']:.2f}",
                         "peak_density": f"{row['peak_density']:.2f}"})  # fmt: skip
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'inline; filename="occupancy.csv"'},
    )


async def health(request: web.Request) -> web.Response:
    """200 while the reader runs (``caught_up`` once it has read the topics to their end at
    start), 503 once it has stopped."""
    feed: Feed = request.app[CENTRE].feed
    reader = request.app[CENTRE].reader
    running = reader is None or reader.is_alive()
    last = feed.last_record_ms
    body = {
        "reader": "running" if running else "stopped",
        "caught_up": feed.caught_up.is_set(),
        "last_record_age_s": None if last is None else round((now_ms() - last) / 1000, 3),
        "error": feed.error,
    }
    return web.json_response(body, status=200 if running and feed.error is None else 503)


async def metrics_view(request: web.Request) -> web.Response:
    body, content_type = request.app[CENTRE].metrics.render()
    return web.Response(body=body, content_type=content_type)
