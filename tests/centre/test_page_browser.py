"""The command-centre page (streams/centre/web/index.html) in a real headless Chromium.

A stub centre serves the page and canned answers of the centre's HTTP API (the bundled
Guangzhou site, zone states with an hour of history, incidents) and a canned event stream that a
test can push events into or cut. Chromium is driven over the DevTools protocol
(streams.testing_browser): the tests type, click and read the DOM, polling until it shows what
is expected (no fixed waits).
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.dispatch import samples
from streams.testing_browser import CHROMIUM, Browser, Node, Page, StubHandler, StubServer

PAGE = Path(__file__).resolve().parents[2] / "streams" / "centre" / "web" / "index.html"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
)

SITE = load_site(bundled_site())
MIN = 60_000
LOS_COLOURS = {
    "A": "#2e7d32",
    "B": "#558b2f",
    "C": "#9e9d24",
    "D": "#f9a825",
    "E": "#ef6c00",
    "F": "#c62828",
}

# --- canned API answers -------------------------------------------------------------------------

# Each zone's density (None: the zone is blind) and level of service, so every LOS is drawn.
DENSITY = {
    "main-square": (5.1, "F"),  # critical crowd incident, open
    "entrance-east": (4.9, "F"),  # critical crowd incident, acknowledged
    "waiting-hall-1": (4.2, "E"),  # warning, open
    "underpass": (None, None),  # camera offline: blind, technical incident
    "east-plaza": (1.2, "D"),
    "west-plaza": (0.9, "C"),
    "entrance-west": (2.0, "B"),
    "ticket-hall": (0.5, "A"),
    "waiting-hall-2": (1.0, "B"),
    "metro-interchange": (1.5, "D"),
    "metro-stairs": (1.2, "D"),  # forecast: critical in 6 min
    "bus-terminal": (0.4, "A"),
    "checkpoint-huanshi-west": (0.7, "C"),
    "checkpoint-jiefang-north": (0.3, "A"),
}


def site_doc() -> dict:
    """/api/site as the centre answers it, from the bundled site file."""
    zones = []
    for z in SITE.zones:
        th = SITE.thresholds(z)
        zones.append(
            {
                "id": z.id,
                "name": z.name,
                "name_zh": z.name_zh,
                "kind": z.kind,
                "area_m2": z.area_m2,
                "warning": th.warning,
                "critical": th.critical,
                "polygon": z.polygon,
                "response_plan": z.response_plan,
                "response_plan_zh": z.response_plan_zh,
            }
        )
    info = SITE.site
    return {
        "site": {
            "id": info.id,
            "name": info.name,
            "name_zh": info.name_zh,
            "timezone": info.timezone,
            "language": info.language,
        },
        "stale_after_s": SITE.defaults.stale_after_s,
        "clock": {"simulated": False, "speed": None},
        "max_silence_s": SITE.incidents.max_silence_s,
        "zones": zones,
    }


def zone_record(zone_id: str, now: int, age_s: float = 2, **kw: Any) -> dict:
    z = SITE.zone_by_id[zone_id]
    th = SITE.thresholds(z)
    density, los = DENSITY[zone_id]
    sources = {"fresh": [f"cam-{zone_id}"], "stale": [], "offline": [], "faulty": []}
    if density is None:
        sources = {"fresh": [], "stale": [], "offline": [f"cam-{zone_id}"], "faulty": []}
    ts = now - int(age_s * 1000)
    history = [
        [ts - (59 - i) * MIN, None if density is None else round(density * (0.5 + i / 118), 3)]
        for i in range(60)
    ]
    rec = {
        "zone_id": zone_id,
        "name": z.name,
        "kind": z.kind,
        "ts": ts,
        "occupancy": None if density is None else density * z.area_m2,
        "area_m2": z.area_m2,
        "density": density,
        "los": los,
        "warning": th.warning,
        "critical": th.critical,
        "sources": sources,
        "anomaly_score": 0.1,
        "minutes_to_warning": None,
        "minutes_to_critical": 6.0 if zone_id == "metro-stairs" else None,
        "minutes_to_critical_low": None,
        "minutes_to_critical_high": None,
        "updated_ms": ts,
        "stale": False,
        "history": history,
    }
    return {**rec, **kw}


def incident(
    zone_id: str,
    now: int,
    *,
    severity: str = "critical",
    category: str = "crowd",
    kind: str = "density",
    opened_min_ago: float = 5,
    seq: int = 2,
    **kw: Any,
) -> dict:
    """A crowd.alerts record (streams.dispatch.samples, so it follows the schema)."""
    opened = now - int(opened_min_ago * MIN)
    zone = SITE.zone_by_id[zone_id]
    th = SITE.thresholds(zone)
    value = {"density": DENSITY[zone_id][0], "source-offline": 2.0}.get(kind, 1.0)
    threshold = {"source-offline": 2.0}.get(
        kind, th.critical if severity == "critical" else th.warning
    )
    what = f"{zone.name}: {severity.upper()} {kind} {value} >= {threshold}"
    alert = samples.member(
        kind, severity, value=value, threshold=threshold, started_at=opened, ts=opened,
        alert_id=f"{zone_id}/{kind}/{opened}", message=what,
    )  # fmt: skip
    fields = {
        "zone_name": zone.name, "severity": severity, "members": [alert], "ts": opened,
        "routes": ["maintenance" if category == "technical" else "station-staff"],
        "density": DENSITY[zone_id][0], "message": what, **kw,
    }  # fmt: skip
    return msgspec.to_builtins(
        samples.incident(
            zone_id, opened, seq, fields.pop("transition", "raised"), category=category, **fields
        )
    )


def canned(now: int) -> dict[str, Any]:
    zones = [zone_record(z.id, now) for z in SITE.zones]
    incidents = [
        incident("main-square", now, opened_min_ago=7),
        incident(
            "entrance-east",
            now,
            state="acknowledged",
            transition="acknowledged",
            acknowledged_by="duty-operator-2",
            acknowledged_at=now - 2 * MIN,
            tier="community",
            opened_min_ago=12,
        ),
        incident("waiting-hall-1", now, severity="warning", opened_min_ago=3),
        incident(
            "underpass",
            now,
            severity="critical",
            category="technical",
            kind="source-offline",
            blind=True,
            opened_min_ago=20,
        ),
    ]
    return {
        "/api/site": site_doc(),
        "/api/zones": {"site": SITE.site.id, "now": now, "stale_after_s": 60, "zones": zones},
        "/api/incidents": {"incidents": incidents},
    }


# --- a stub centre ------------------------------------------------------------------------------


class StubCentre:
    """The centre's HTTP API, canned: what the page asked, posted and was answered."""

    def __init__(
        self,
        role: str = "operator",
        login: bool = False,
        now: int | None = None,
        clock: dict | None = None,
    ):
        self.now = now if now is not None else int(time.time() * 1000)
        self.feeds = canned(self.now)
        if clock is not None:  # what /api/site says about time (a simulation, its speed)
            self.feeds["/api/site"]["clock"] = clock
        self.me = {"name": f"duty-{role}", "role": role}
        self.token = "s3cret-token"
        self.login_required = login
        self.logins: list[str] = []
        self.posts: list[tuple[str, Any]] = []
        self.served: list[str] = []  # API paths answered with data
        self.post_answers: dict[str, tuple[int, dict]] = {}
        self.streams: list[queue.Queue] = []
        self.streams_opened = 0
        self.cut = False
        self.closing = False
        self.lock = threading.Lock()
        stub = self

        class Handler(_Handler):
            centre = stub

        self.server = StubServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> StubCentre:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing = True
        for q in list(self.streams):
            q.put(None)
        self.server.shutdown()
        self.server.server_close()

    def push(self, event: str, data: dict) -> None:
        """One server-sent event to every connected page."""
        for q in list(self.streams):
            q.put((event, data))

    def cut_stream(self) -> None:
        """Drop every event stream and refuse new ones."""
        self.cut = True
        for q in list(self.streams):
            q.put(None)

    def restore_stream(self) -> None:
        self.cut = False


class _Handler(StubHandler):
    centre: StubCentre

    def _authed(self) -> bool:
        c = self.centre
        return not c.login_required or f"session={c.token}" in (self.headers.get("Cookie") or "")

    def do_GET(self):  # noqa: N802 (http.server's name)
        c, path = self.centre, self.path.split("?")[0]
        if path == "/":
            return self.send_body(200, "text/html; charset=utf-8", PAGE.read_bytes())
        if not self._authed():
            return self.send_json(401, {"error": "log in"})
        if path == "/api/me":
            return self.send_json(200, c.me)
        if path == "/api/events":
            return self._events()
        if path in c.feeds:
            c.served.append(path)
            return self.send_json(200, c.feeds[path])
        self.send_json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        c, path = self.centre, self.path.split("?")[0]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/login":
            token = json.loads(raw or b"{}").get("token")
            c.logins.append(token)
            if token != c.token:
                return self.send_json(401, {"error": "bad token"})
            self.send_response(204)
            self.send_header("Set-Cookie", f"session={c.token}; HttpOnly; SameSite=Strict; Path=/")
            self.end_headers()
            return
        if not self._authed():
            return self.send_json(401, {"error": "log in"})
        body = json.loads(raw or b"{}")
        c.posts.append((path, body))
        status, answer = c.post_answers.get(path, (202, {"sent": body}))
        self.send_json(status, answer)

    def _events(self) -> None:
        c = self.centre
        if c.cut:
            return self.send_json(503, {"error": "unavailable"})
        q: queue.Queue = queue.Queue()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        with c.lock:
            c.streams.append(q)
            c.streams_opened += 1
        try:
            self._event("hello", {"now": c.now})
            while not c.closing:
                try:
                    item = q.get(timeout=1)
                except queue.Empty:
                    self.wfile.write(b": heartbeat\n\n")
                    self.wfile.flush()
                    continue
                if item is None:
                    return
                self._event(*item)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with c.lock:
                c.streams.remove(q)

    def _event(self, event: str, data: dict) -> None:
        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(window=(1920, 1080)) as b:
        yield b


@pytest.fixture
def open_page(browser: Browser) -> Iterator:
    """``open_page(stub, lang="en")``: a tab on the stub centre, once the plan is drawn."""
    pages: list[Page] = []

    def open_(stub: StubCentre, lang: str | None = "en", ready: bool = True) -> Page:
        page = browser.open(stub.url + "#")
        if lang:  # the site file says Chinese; most tests read English
            page.eval(f"localStorage.setItem('crowdsafe.lang', '{lang}')")
            page.goto(stub.url)
        pages.append(page)
        if ready:
            page.wait_for("document.querySelectorAll('#incidents .incident').length > 0")
        return page

    yield open_
    for page in pages:
        assert page.errors() == [], page.errors()
        browser.send("Target.closeTarget", {"targetId": page.target})


@pytest.fixture
def stub(request) -> Iterator[StubCentre]:
    params = getattr(request, "param", {})
    with StubCentre(**params) as s:
        yield s


def plan_zones(dom: Node) -> dict[str, Node]:
    return {g.attrs["data-zone"]: g for g in dom.by_id("plan").with_attr("data-zone")}


def rows(dom: Node) -> dict[str, Node]:
    return {r.attrs["data-zone"]: r for r in dom.by_id("incidents").with_attr("data-incident-id")}


def buttons(row: Node) -> list[str]:
    return [b.attrs["data-action"] for b in row.find_all(lambda n: n.tag == "button")]


def wait_posted(stub: StubCentre, path: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bodies = [b for p, b in stub.posts if p == path]
        if bodies:
            return bodies[-1]
        time.sleep(0.05)
    raise AssertionError(f"nothing posted to {path}: {stub.posts}")


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stub", [{"login": True}], indirect=True)
def test_login_form_on_401_posts_the_token_and_no_data_before(stub, open_page):
    page = open_page(stub, ready=False)
    dom = page.wait_for("document.body.dataset.auth === 'login'")
    token = dom.by_id("token")
    assert token.attrs["type"] == "password" and token.attrs["name"] == "token"
    assert dom.by_id("login-card").attrs["action"] == "/login"
    assert stub.served == []  # nothing but the 401s
    assert not page.eval("document.getElementById('app').hidden === false")

    page.type("#token", "wrong")
    page.click("#login-card button[type=submit]")
    page.wait_for("document.getElementById('login-error').textContent.length > 0")
    assert stub.logins == ["wrong"] and stub.served == []

    page.type("#token", stub.token)
    page.click("#login-card button[type=submit]")
    page.wait_for("document.querySelectorAll('#plan .zone[data-los]').length === 14")
    assert stub.logins == ["wrong", stub.token]
    assert page.eval("document.body.dataset.auth") == "in"
    assert page.eval("document.cookie") == ""  # HttpOnly: the script never sees the session
    assert "duty-operator" in page.dom().by_id("user").text()


def test_every_zone_of_the_site_is_on_the_plan_with_its_los_colour(stub, open_page, tmp_path):
    page = open_page(stub)
    dom = page.wait_for(
        lambda d: all(g.attrs.get("data-los") is not None for g in plan_zones(d).values())
    )
    drawn = plan_zones(dom)
    assert set(drawn) == {z.id for z in SITE.zones} and len(drawn) == 14
    legend = {
        n.attrs["data-los"]: n.attrs["data-colour"]
        for n in dom.by_id("legend").with_attr("data-los")
    }
    assert legend == LOS_COLOURS
    for zone_id, g in drawn.items():
        _, los = DENSITY[zone_id]
        (fill,) = g.find_all(lambda n: "fill" in n.classes)
        assert g.attrs["data-los"] == (los or ""), zone_id
        assert fill.attrs["fill"] == (legend[los] if los else "#4a5360"), zone_id
        assert len(fill.attrs["points"].split()) == len(SITE.zone_by_id[zone_id].polygon)
        label = g.find_all(lambda n: "label" in n.classes)[0].text()
        assert label and label in SITE.zone_by_id[zone_id].name
    # A sparkline per zone from the hour of history, with the forecast where there is one.
    sparks = dom.by_id("tiles").find_all(lambda n: "spark" in n.classes)
    assert len(sparks) == 14
    assert {s.attrs["data-points"] for s in sparks} == {"60", "0"}  # the blind zone: no values
    stairs = dom.by_id("tiles").find_all(lambda n: n.attrs.get("data-zone") == "metro-stairs")[0]
    assert "critical in ~6 min" in stairs.text() and stairs.with_attr("data-forecast")

    shot = page.screenshot(
        Path(os.environ.get("CROWDSAFE_SCREENSHOT_DIR", tmp_path)) / "centre.png"
    )
    assert shot.stat().st_size > 20_000  # README's shot: test_centre_browser_kafka.py


def test_handled_critical_differs_from_new_and_technical_from_crowd(stub, open_page):
    page = open_page(stub)
    dom = page.dom()
    plan = plan_zones(dom)
    new, handled = plan["main-square"], plan["entrance-east"]
    assert (new.attrs["data-incident"], new.attrs["data-level"]) == ("open", "critical")
    assert (handled.attrs["data-incident"], handled.attrs["data-level"]) == (
        "acknowledged",
        "critical",
    )
    ring = "((z) => getComputedStyle(document.querySelector(`#plan [data-zone=${z}] .ring`)))"
    look = page.eval(
        f"[{ring}('main-square'), {ring}('entrance-east')]"
        ".map(s => [s.stroke, s.animationName].join(' '))"
    )
    assert look[0] != look[1] and "blink" in look[0] and "blink" not in look[1]
    assert "!" in new.text() and "✓" in handled.text()
    # The camera down: technical (hatched), not a crowd level; calm zones are neither.
    assert plan["underpass"].attrs["data-technical"] == "true"
    assert plan["underpass"].attrs["data-blind"] == "true"
    assert plan["underpass"].attrs["data-incident"] == ""  # no crowd incident drawn
    assert plan["ticket-hall"].attrs["data-technical"] == "false"
    hatch = page.eval(
        "[...document.querySelectorAll('#plan .zone .hatch')]"
        ".filter(e => getComputedStyle(e).display !== 'none').map(e => e.parentNode.dataset.zone)"
    )
    assert hatch == ["underpass"]
    by_zone = rows(dom)
    assert by_zone["underpass"].attrs["data-category"] == "technical"
    assert by_zone["underpass"].with_attr("data-technical", "true")
    assert not by_zone["main-square"].with_attr("data-technical")


def test_incident_list_shows_open_for_tier_who_acknowledged_and_the_response_plan(stub, open_page):
    page = open_page(stub)
    dom = page.dom()
    order = [r.attrs["data-zone"] for r in dom.by_id("incidents").with_attr("data-incident-id")]
    # New first (critical before warning), then the handled one; crowd before technical.
    assert order == ["main-square", "underpass", "waiting-hall-1", "entrance-east"]
    by_zone = rows(dom)
    square = by_zone["main-square"]
    assert re.search(r"open for (7|8) min", square.text()), square.text()
    assert square.with_attr("data-tier", "grid") and "tier: grid" in square.text()
    assert SITE.zone_by_id["main-square"].response_plan in square.text()
    gate = by_zone["entrance-east"]
    assert "acknowledged by duty-operator-2" in gate.text()
    assert "tier: community" in gate.text()
    assert "open for 12 min" in gate.text() or "open for 13 min" in gate.text()
    assert "CRITICAL density" in square.text()  # English: the record's own message


@pytest.mark.parametrize(
    ("stub", "expected"),
    [
        ({"role": "viewer"}, {"ack": 0, "resolve": 0, "silence": 0}),
        ({"role": "operator"}, {"ack": 3, "resolve": 0, "silence": 0}),
        ({"role": "supervisor"}, {"ack": 3, "resolve": 4, "silence": 4}),
    ],
    indirect=["stub"],
)
def test_buttons_follow_the_role(stub, expected, open_page):
    page = open_page(stub)
    dom = page.dom()
    counts = {a: len(dom.by_id("incidents").with_attr("data-action", a)) for a in expected}
    assert counts == expected
    assert buttons(rows(dom)["entrance-east"]).count("ack") == 0  # acknowledged already
    manual_hidden = page.eval("document.getElementById('manual').hidden")
    assert manual_hidden == (stub.me["role"] == "viewer")


@pytest.mark.parametrize("stub", [{"role": "operator"}], indirect=True)
def test_operator_acknowledges_and_raises_a_manual_incident(stub, open_page):
    page = open_page(stub)
    square = stub.feeds["/api/incidents"]["incidents"][0]
    page.click(f'.incident[data-incident-id="{square["incident_id"]}"] button[data-action=ack]')
    assert wait_posted(stub, "/api/ack") == {"incident_id": square["incident_id"]}
    page.wait_for("document.querySelector('.incident .result') !== null")

    # From the keyboard: a zone of the plan, Enter: the form names it.
    page.eval("document.querySelector('#plan [data-zone=bus-terminal]').focus()")
    page.press("Enter", 13)
    page.wait_for("document.getElementById('manual-zone').value === 'bus-terminal'")
    page.eval("document.getElementById('manual-severity').value = 'critical'")
    page.type("#manual-note", "fight at bay 3")
    page.click("#manual button[type=submit]")
    assert wait_posted(stub, "/api/manual") == {
        "zone_id": "bus-terminal",
        "severity": "critical",
        "note": "fight at bay 3",
    }


@pytest.mark.parametrize("stub", [{"role": "supervisor"}], indirect=True)
def test_supervisor_silences_and_sees_a_refusal(stub, open_page):
    page = open_page(stub)
    tech = next(
        i for i in stub.feeds["/api/incidents"]["incidents"] if i["category"] == "technical"
    )
    page.click(f'.incident[data-incident-id="{tech["incident_id"]}"] button[data-action=silence]')
    page.wait_for("document.getElementById('silence-dlg').open")
    assert page.eval("document.getElementById('silence-minutes').max") == "1440"
    page.eval("document.getElementById('silence-minutes').value = '45'")
    page.type("#silence-reason", "camera replaced tonight")
    page.click("#silence-form button[type=submit]")
    assert wait_posted(stub, "/api/silence") == {
        "zone_id": "underpass",
        "source_id": "cam-underpass",  # the offline camera, preselected
        "minutes": 45,
        "reason": "camera replaced tonight",
    }
    page.wait_for("!document.getElementById('silence-dlg').open")

    stub.post_answers["/api/resolve"] = (403, {"error": "supervisor role needed"})
    page.click(f'.incident[data-incident-id="{tech["incident_id"]}"] button[data-action=resolve]')
    assert wait_posted(stub, "/api/resolve") == {"incident_id": tech["incident_id"]}
    dom = page.wait_for(lambda d: d.find_all(lambda n: "err" in n.classes and n.text()))
    assert "supervisor role needed" in rows(dom)["underpass"].text()


def test_incident_events_add_and_remove_rows_live(stub, open_page):
    page = open_page(stub)
    page.wait_for("document.body.dataset.conn === 'live'")
    assert page.eval("document.body.dataset.beeps") is None
    surge = incident("metro-stairs", stub.now, opened_min_ago=1, seq=1)
    stub.push("incident", surge)
    dom = page.wait_for(lambda d: "metro-stairs" in rows(d))
    assert rows(dom)["metro-stairs"].attrs["data-state"] == "open"
    assert plan_zones(dom)["metro-stairs"].attrs["data-incident"] == "open"
    assert page.eval("document.body.dataset.beeps") == "1"  # a new critical: one alarm

    stub.push(
        "incident",
        {**surge, "seq": 2, "transition": "acknowledged", "state": "acknowledged"},
    )
    page.wait_for(lambda d: rows(d)["metro-stairs"].attrs["data-state"] == "acknowledged")
    stub.push("incident", {**surge, "seq": 3, "transition": "resolved", "state": "resolved"})
    dom = page.wait_for(lambda d: "metro-stairs" not in rows(d))
    assert plan_zones(dom)["metro-stairs"].attrs["data-incident"] == ""
    assert page.eval("document.body.dataset.beeps") == "1"

    # A silence shows on its zone.
    silence = {"v": 1, "silence_id": "s-1", "zone_id": "underpass", "source_id": "cam-underpass",
               "by": "duty-supervisor", "reason": "camera replaced", "ts": stub.now,
               "ends_at": stub.now + 60 * MIN, "action": "create"}  # fmt: skip
    stub.push("silence", silence)
    page.wait_for(
        "document.querySelector('.tile[data-zone=underpass]').textContent.includes('silenced until')"
    )
    stub.push("silence", {**silence, "action": "expire"})
    page.wait_for(
        "!document.querySelector('.tile[data-zone=underpass]').textContent.includes('silenced')"
    )

    # A zone event moves the zone's density, colour and sparkline on.
    zone = zone_record("ticket-hall", stub.now + 1000, age_s=0, density=2.4, los="E")
    del zone["history"]
    stub.push("zone", {**zone, "point": [zone["ts"], 2.4]})
    dom = page.wait_for(lambda d: plan_zones(d)["ticket-hall"].attrs["data-los"] == "E")
    tile = dom.by_id("tiles").find_all(lambda n: n.attrs.get("data-zone") == "ticket-hall")[0]
    assert "2.40" in tile.text()
    assert tile.find_all(lambda n: "spark" in n.classes)[0].attrs["data-points"] == "61"


def test_mute_is_remembered_and_silences_the_alarm(stub, open_page):
    page = open_page(stub)
    page.wait_for("document.body.dataset.conn === 'live'")
    page.click("#mute")
    assert page.eval("localStorage.getItem('crowdsafe.muted')") == "1"
    page.goto(stub.url)
    page.wait_for("document.body.dataset.conn === 'live'")
    assert page.eval("document.getElementById('mute').getAttribute('aria-pressed')") == "true"
    stub.push("incident", incident("bus-terminal", stub.now, opened_min_ago=1, seq=1))
    page.wait_for(lambda d: "bus-terminal" in rows(d))
    assert page.eval("document.body.dataset.beeps") is None


def test_banner_when_the_stream_is_cut_and_gone_when_it_is_back(stub, open_page):
    page = open_page(stub)
    page.wait_for("document.body.dataset.conn === 'live'")
    assert page.eval("document.getElementById('banner').hidden")
    stub.cut_stream()
    page.wait_for("document.body.dataset.banner === 'down'")
    dom = page.dom()
    assert "NOT live" in dom.by_id("banner").text()
    assert len(plan_zones(dom)) == 14  # the last picture stays, marked
    stub.restore_stream()
    page.wait_for("document.body.dataset.banner === '' && document.body.dataset.conn === 'live'")


@pytest.mark.parametrize("stub", [{"now": int(time.time() * 1000) + 10 * MIN}], indirect=True)
def test_banner_when_the_newest_data_is_older_than_the_stale_time(stub, open_page):
    for z in stub.feeds["/api/zones"]["zones"]:
        z["ts"] = z["updated_ms"] = stub.now - 5 * MIN
    page = open_page(stub)
    dom = page.wait_for("document.body.dataset.banner === 'stale'")
    assert "No new data for 5 min" in dom.by_id("banner").text()


def test_language_switch_changes_ui_zone_names_and_messages(stub, open_page):
    page = open_page(stub, lang=None)  # the site file's language: Chinese
    dom = page.wait_for("document.documentElement.lang === 'zh-CN'")
    assert dom.by_id("inc-h").text() == "事件"
    label = plan_zones(dom)["main-square"].find_all(lambda n: "label" in n.classes)[0]
    assert label.text() == "站前主广场"
    square = rows(dom)["main-square"]
    assert "站前主广场" in square.text() and "危险" in square.text() and "密度" in square.text()
    assert SITE.zone_by_id["main-square"].response_plan_zh in square.text()
    assert "已持续" in square.text()

    page.click("#lang")
    dom = page.wait_for("document.documentElement.lang === 'en'")
    assert dom.by_id("inc-h").text() == "Incidents"
    label = plan_zones(dom)["main-square"].find_all(lambda n: "label" in n.classes)[0]
    assert label.text() == "Station main square"
    page.goto(stub.url)  # remembered
    page.wait_for("document.documentElement.lang === 'en' && !!document.querySelector('.incident')")


def station_clock(page: Page, stub: StubCentre, browser_zone: str = "America/New_York") -> Node:
    """The page reloaded in a browser whose own time zone is not the site's (nor UTC, where
    the tests run), once the header's clock shows."""
    assert SITE.site.timezone == "Asia/Shanghai"  # the bundled site: UTC+8 all year
    page.send("Emulation.setTimezoneOverride", {"timezoneId": browser_zone})
    page.goto(stub.url)
    dom = page.wait_for(
        "!!document.getElementById('clock').dataset.ts"
        " && document.querySelectorAll('#incidents .incident').length > 0"
    )
    assert page.eval("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone
    return dom


def test_times_are_shown_in_the_sites_time_zone_and_the_clock_is_event_time(stub, open_page):
    page = open_page(stub)
    # The zones' newest event time, 40 s ago: the header shows it, not the browser's clock.
    newest = stub.now - 40_000
    for i, z in enumerate(stub.feeds["/api/zones"]["zones"]):
        z["ts"] = newest if i == 3 else newest - 10_000
    dom = station_clock(page, stub)
    tz = ZoneInfo(SITE.site.timezone)
    assert int(dom.by_id("clock").attrs["data-ts"]) == newest
    expected = datetime.fromtimestamp(newest / 1000, tz).strftime("%H:%M:%S")
    assert dom.by_id("clock").text() == f"{expected} UTC+8"
    assert "Asia/Shanghai" in dom.by_id("clock").attrs["title"]
    # Incident times too: since when the square's incident is open, station time.
    opened = stub.now - 7 * MIN
    since = datetime.fromtimestamp(opened / 1000, tz).strftime("%H:%M")
    browser_local = datetime.fromtimestamp(opened / 1000, ZoneInfo("America/New_York"))
    assert since != browser_local.strftime("%H:%M")
    assert f"since {since}" in rows(dom)["main-square"].text()
    # Live readings say live.
    page.wait_for("document.body.dataset.conn === 'live'")
    assert page.eval("document.getElementById('conn').textContent") == "live"
    assert page.eval("document.body.dataset.clock") == "live"


@pytest.mark.parametrize("stub", [{"clock": {"simulated": True, "speed": 10}}], indirect=True)
def test_simulated_readings_are_labelled_simulated_with_their_speed_not_live(stub, open_page):
    page = open_page(stub)
    dom = station_clock(page, stub)
    page.wait_for("document.body.dataset.conn === 'live'")
    assert page.eval("document.getElementById('conn').textContent") == "simulated ×10"
    assert page.eval("document.body.dataset.clock") == "simulated"
    assert "10× faster than the clock" in dom.by_id("clock").attrs["title"]
    page.click("#lang")
    page.wait_for("document.getElementById('conn').textContent === '模拟 ×10'")
