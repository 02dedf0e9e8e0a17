"""The command centre end to end in a real headless Chromium: a real worker and a real
``crowdsafe centre`` on the real broker, the page driven as an operator and a viewer would.

Without a login the page shows only its login form (the API answers 401, no zone is drawn); an
operator logs in through the form and sees every zone of the site on the plan; a surge's
critical incident appears in the list live (over the event stream, no reload); the operator
acknowledges it and the acknowledgement, with the operator's name, is on ``crowd.audit``; a
viewer in a fresh profile sees the data but no button, and the centre refuses the viewer's
acknowledgement (403). Screenshots of the run go to the test's tmp dir (or
``CROWDSAFE_SCREENSHOT_DIR``); ``CROWDSAFE_UPDATE_README_SHOT=1`` refreshes
``docs/command-centre.png`` from this run. Every wait polls with a generous timeout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streams.config.site import load_site
from streams.testing_browser import CHROMIUM, Browser, Node, Page

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
    ),
]

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "command-centre.png"
SURGE_ZONE = "entrance-east"
OPERATOR, VIEWER = "li.wei", "wang.fang"
WAIT = 120  # s: generous; every wait returns as soon as its condition holds


def plan_zones(dom: Node) -> dict[str, Node]:
    return {g.attrs["data-zone"]: g for g in dom.by_id("plan").with_attr("data-zone")}


def rows(dom: Node) -> dict[str, Node]:
    return {
        r.attrs["data-incident-id"]: r for r in dom.by_id("incidents").with_attr("data-incident-id")
    }


def surge_rows(dom: Node) -> list[Node]:
    """The surge zone's critical crowd incident(s) in the list."""
    return [
        r
        for r in rows(dom).values()
        if r.attrs["data-zone"] == SURGE_ZONE
        and r.attrs["data-category"] == "crowd"
        and r.attrs["data-severity"] == "critical"
    ]


def open_in_english(browser: Browser, url: str) -> Page:
    """A tab on the centre, in English (the site file's language is Chinese)."""
    page = browser.open(url)
    page.eval("localStorage.setItem('crowdsafe.lang', 'en')")
    page.goto(url)
    return page


def log_in(page: Page, token: str) -> None:
    page.wait_for("document.body.dataset.auth === 'login'", timeout=WAIT)
    page.type("#token", token)
    page.click("#login-card button[type=submit]")
    page.wait_for("document.body.dataset.auth === 'in'", timeout=WAIT)


def fetch(page: Page, path: str, body: dict | None = None) -> tuple[int, str]:
    """``path`` fetched by the page itself (its cookie, its origin): status and body text."""
    opts = {"credentials": "same-origin", "cache": "no-store"}
    if body is not None:
        opts |= {
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body),
        }
    return tuple(
        page.eval(
            f"fetch({json.dumps(path)}, {json.dumps(opts)})"
            ".then(async r => [r.status, await r.text()])"
        )
    )


def incidents_fetched(page: Page) -> int:
    """How many times the page has fetched /api/incidents (snapshots, not the event stream)."""
    return page.eval(
        "performance.getEntriesByType('resource')"
        ".filter(e => new URL(e.name).pathname === '/api/incidents').length"
    )


def shoot(page: Page, name: str, tmp_path: Path) -> Path:
    shot = page.screenshot(Path(os.environ.get("CROWDSAFE_SCREENSHOT_DIR", tmp_path)) / name)
    assert shot.stat().st_size > 10_000, shot
    return shot


def test_operator_sees_every_zone_and_a_live_surge_acknowledges_it_and_a_viewer_may_not(
    pipeline, tmp_path
):
    box = pipeline
    site = load_site(box.settings().site)
    site_zones = [z.id for z in site.zones]
    operator = box.add_user(OPERATOR, "operator")
    viewer = box.add_user(VIEWER, "viewer")
    url = f"http://127.0.0.1:{box.centre_port}/"
    try:
        box.start_worker()
        box.start_centre()
        with Browser(window=(1920, 1080)) as browser:
            page = open_in_english(browser, url)

            # (a) Not logged in: the login form, no zone drawn, and the API refuses the page.
            dom = page.wait_for("document.body.dataset.auth === 'login'", timeout=WAIT)
            assert "hidden" not in dom.by_id("login-view").attrs
            assert "hidden" in dom.by_id("app").attrs
            assert plan_zones(dom) == {} and rows(dom) == {}
            for path in ("/api/site", "/api/zones", "/api/incidents"):
                status, text = fetch(page, path)
                assert status == 401, (path, status, text)
                assert not any(z in text for z in site_zones), text  # no data with the 401
            shoot(page, "1-login.png", tmp_path)

            # (b) The operator logs in through the form: every zone of the site on the plan.
            log_in(page, operator)
            dom = page.wait_for(
                f"document.querySelectorAll('#plan .zone').length === {len(site_zones)}",
                timeout=WAIT,
            )
            assert sorted(plan_zones(dom)) == sorted(site_zones)
            for zone_id, g in plan_zones(dom).items():
                (fill,) = g.find_all(lambda n: "fill" in n.classes)
                assert len(fill.attrs["points"].split()) == len(site.zone_by_id[zone_id].polygon)
            assert OPERATOR in dom.by_id("user").text()
            page.wait_for("document.body.dataset.conn === 'live'", timeout=WAIT)
            assert page.eval("document.cookie") == ""  # HttpOnly: the script never sees it

            # (c) A surge: its critical incident appears live, with no reload and no snapshot.
            page.eval("window.__sameDocument = true")
            snapshots = incidents_fetched(page)
            box.simulate_surge_until_now()
            dom = page.wait_for(lambda d: surge_rows(d), timeout=WAIT)
            assert page.eval("window.__sameDocument === true")  # not reloaded
            assert incidents_fetched(page) == snapshots  # came over the event stream
            (row,) = surge_rows(dom)
            surge_id = row.attrs["data-incident-id"]
            assert row.attrs["data-state"] == "open"
            assert plan_zones(dom)[SURGE_ZONE].attrs["data-incident"] == "open"
            # Every zone coloured by its level of service from the live zone states.
            dom = page.wait_for(
                lambda d: all(g.attrs.get("data-los") for g in plan_zones(d).values()),
                timeout=WAIT,
            )
            shoot(page, "2-surge.png", tmp_path)

            # (d) The operator acknowledges it on the page.
            ack = f'.incident[data-incident-id="{surge_id}"] button[data-action=ack]'
            page.click(ack)
            dom = page.wait_for(
                lambda d: (
                    surge_id in rows(d)
                    and rows(d)[surge_id].attrs["data-state"] == "acknowledged"
                    and rows(d)[surge_id].with_attr("data-acknowledged-by", OPERATOR)
                ),
                timeout=WAIT,
            )
            acked = rows(dom)[surge_id]
            assert f"acknowledged by {OPERATOR}" in acked.text()
            assert "waiting for the update" not in acked.text()  # the update came: note gone
            assert not acked.with_attr("data-action", "ack")
            assert plan_zones(dom)[SURGE_ZONE].attrs["data-incident"] == "acknowledged"

            def acknowledged(audit: list[dict]) -> bool:
                return any(
                    a["action"] == "acknowledge" and a["incident_id"] == surge_id for a in audit
                )

            audit = box.read("audit", until=acknowledged, timeout=WAIT)
            acks = [a for a in audit if a["action"] == "acknowledge"]
            assert [(a["incident_id"], a["actor"]) for a in acks] == [(surge_id, OPERATOR)]
            shot = shoot(page, "3-acknowledged.png", tmp_path)
            if os.environ.get("CROWDSAFE_UPDATE_README_SHOT"):  # refresh docs/command-centre.png
                import cv2  # fewer colour levels keep the committed PNG small (< 300 KB)

                image = cv2.imread(str(shot))
                cv2.imwrite(
                    str(README_SHOT), (image // 8) * 8 + 4, [cv2.IMWRITE_PNG_COMPRESSION, 9]
                )
            assert page.errors() == [], page.errors()

        # (e) A viewer, in a fresh browser (its own profile: no operator cookie): the data, no
        # buttons, and the centre refuses the viewer's acknowledgement.
        with Browser(window=(1920, 1080)) as browser:
            page = open_in_english(browser, url)
            log_in(page, viewer)
            dom = page.wait_for(
                lambda d: (
                    surge_id in rows(d)
                    and all(g.attrs.get("data-los") for g in plan_zones(d).values())
                ),
                timeout=WAIT,
            )
            assert sorted(plan_zones(dom)) == sorted(site_zones)
            assert rows(dom)[surge_id].with_attr("data-acknowledged-by", OPERATOR)
            assert dom.by_id("incidents").with_attr("data-action") == []
            assert page.eval("document.getElementById('manual').hidden")
            assert VIEWER in dom.by_id("user").text()
            shoot(page, "4-viewer.png", tmp_path)

            status, text = fetch(page, "/api/ack", {"incident_id": surge_id})  # its cookie
            assert status == 403 and "viewer" in text, (status, text)
            status, answer = box.centre_post("/api/ack", {"incident_id": surge_id}, viewer)
            assert status == 403 and "viewer" in answer["error"], (status, answer)
            assert page.errors() == [], page.errors()

        audit = box.read("audit", until=acknowledged, timeout=WAIT)
        assert [a["actor"] for a in audit if a["action"] == "acknowledge"] == [OPERATOR]
    finally:
        box.stop_centre()
        box.stop_worker()
