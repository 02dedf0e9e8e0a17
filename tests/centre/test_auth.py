"""Users, tokens and sessions, and the API's refusals: every endpoint without a login (401, no
data), with a role without the right (403), and who may do what (aiohttp's test server; the
Kafka side replaced by a recorder)."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.centre.auth import (
    Authenticator,
    UsersError,
    add_user,
    hash_token,
    read_users,
    remove_user,
    verify_token,
)
from streams.centre.metrics import CentreMetrics
from streams.centre.reader import Feed
from streams.centre.server import COOKIE, build_app
from streams.centre.view import CentreView
from streams.config.settings import Settings

READS = ["/api/me", "/api/site", "/api/zones", "/api/incidents", "/api/silences", "/api/events"]
ACTS = {  # endpoint -> (least role, a valid body)
    "/api/ack": ("operator", {"incident_id": "entrance-east/crowd/1764000000000", "note": "on it"}),
    "/api/manual": ("operator", {"zone_id": "ticket-hall", "severity": "warning",
                                 "note": "a fight at the ticket machines"}),
    "/api/resolve": ("supervisor", {"incident_id": "west-plaza/crowd/1764000000000"}),
    "/api/silence": ("supervisor", {"zone_id": "east-plaza", "minutes": 30,
                                    "reason": "planned event"}),
}  # fmt: skip


def test_token_hash_is_salted_scrypt_and_verifies_only_its_token():
    token = "cs_0123456789ab_" + "s" * 40
    a, b = hash_token(token), hash_token(token)
    assert a != b  # salted
    assert verify_token(token, a) and verify_token(token, b)
    assert not verify_token(token + "x", a)
    assert token not in a
    assert not verify_token(token, "plain$" + token)


def test_users_file_is_owner_only_and_keeps_no_token(tmp_path):
    path = tmp_path / "centre" / "users.toml"
    token = add_user(path, "li.wei", "operator")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert token not in path.read_text()
    assert [(u.name, u.role) for u in read_users(path)] == [("li.wei", "operator")]
    again = add_user(path, "li.wei", "supervisor")  # a new token replaces the old one
    auth = Authenticator(path)
    assert auth.user_for_token(token) is None
    assert auth.user_for_token(again).role == "supervisor"
    assert remove_user(path, "li.wei") and read_users(path) == []
    with pytest.raises(UsersError):
        add_user(path, "bad name", "operator")
    with pytest.raises(UsersError):
        add_user(path, "x", "admin")


def test_env_token_is_the_operator_and_sessions_end_with_their_user(tmp_path):
    path = tmp_path / "users.toml"
    auth = Authenticator(path, env_token="single-operator-token")
    op = auth.user_for_token("single-operator-token")
    assert (op.name, op.role) == ("operator", "operator")
    assert auth.user_for_token("single-operator-token-") is None
    token = add_user(path, "chen", "supervisor")
    user = auth.user_for_token(token)  # the file is re-read when it changes
    sid = auth.open_session(user)
    assert token not in sid and auth.session_user(sid) == user
    remove_user(path, "chen")
    assert auth.session_user(sid) is None


# --- the API ----------------------------------------------------------------------------------


class Recorder:
    """Stands in for the Kafka producer of actions."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    async def send(self, topic: str, key: str, struct) -> dict:
        import msgspec

        self.sent.append((topic, key, msgspec.to_builtins(struct)))
        return {"topic": topic, "partition": 0, "offset": len(self.sent) - 1}

    def close(self) -> None:
        pass


@pytest.fixture
def centre(tmp_path, records):
    """An app over a view holding one open and one cleared incident; users of every role."""
    path = tmp_path / "users.toml"
    tokens = {role: add_user(path, f"{role}-1", role) for role in ("viewer", "operator", "supervisor")}  # fmt: skip
    settings = Settings(state_dir=tmp_path, users_file=path)
    view = CentreView(records.site)
    view.apply_zone_state(records.zone_state(), records.t0)
    view.apply_incident(records.incident())
    view.apply_incident(records.incident(zone="west-plaza", state="cleared",
                                         member_state="cleared", transition="cleared"))  # fmt: skip
    feed = Feed(view)
    recorder = Recorder()
    app = build_app(settings, records.site, feed, Authenticator(path), CentreMetrics(feed),
                    actions=recorder)  # fmt: skip
    return app, tokens, recorder


def run(app, scenario):
    async def main():
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_without_a_login_every_api_answers_401_and_no_data(centre):
    app, _, recorder = centre

    async def scenario(client):
        out = {}
        for path in READS:
            r = await client.get(path)
            out[path] = (r.status, await r.text())
        for path, (_, body) in ACTS.items():
            r = await client.post(path, json=body)
            out[path] = (r.status, await r.text())
        for path in READS:  # a wrong token or session is no better
            r = await client.get(
                path, headers={"Authorization": "Bearer cs_000000000000_" + "x" * 40}
            )
            out["bearer " + path] = (r.status, await r.text())
            r = await client.get(path, cookies={COOKIE: "forged"})
            out["cookie " + path] = (r.status, await r.text())
        return out

    for path, (status, text) in run(app, scenario).items():
        assert status == 401, path
        assert json.loads(text) == {"error": "login needed"}, path
    assert recorder.sent == []


def test_open_endpoints_need_no_login(centre):
    app, _, _ = centre

    async def scenario(client):
        return {p: (await client.get(p)).status for p in ("/", "/health", "/metrics", "/open/occupancy.csv")}  # fmt: skip

    assert set(run(app, scenario).values()) == {200}


@pytest.mark.parametrize("role", ["viewer", "operator", "supervisor"])
def test_each_role_may_read_and_does_only_what_it_may(centre, role):
    app, tokens, recorder = centre
    rank = ["viewer", "operator", "supervisor"]

    async def scenario(client):
        auth = {"Authorization": f"Bearer {tokens[role]}"}
        reads = {}
        for path in READS[:-1]:
            r = await client.get(path, headers=auth)
            reads[path] = (r.status, await r.json())
        acts = {}
        for path, (_, body) in ACTS.items():
            r = await client.post(path, json=body, headers=auth)
            acts[path] = (r.status, await r.json())
        return reads, acts

    reads, acts = run(app, scenario)
    assert {s for s, _ in reads.values()} == {200}
    assert reads["/api/me"][1] == {"name": f"{role}-1", "role": role}
    for path, (least, _body) in ACTS.items():
        status, answer = acts[path]
        if rank.index(role) >= rank.index(least):
            assert status == 202, (path, answer)
            assert answer["sent"]["by"] == f"{role}-1"  # the authenticated user, always
        else:
            assert status == 403, (path, answer)
    allowed = [p for p, (least, _) in ACTS.items() if rank.index(role) >= rank.index(least)]
    assert len(recorder.sent) == len(allowed)


def test_actions_go_to_their_topics_keyed_by_zone_signed_by_the_user(centre):
    app, tokens, recorder = centre

    async def scenario(client):
        auth = {"Authorization": f"Bearer {tokens['supervisor']}"}
        body = {**ACTS["/api/ack"][1], "by": "someone-else"}
        statuses = [(await client.post("/api/ack", json=body, headers=auth)).status]
        for path in ("/api/manual", "/api/resolve", "/api/silence"):
            statuses.append((await client.post(path, json=ACTS[path][1], headers=auth)).status)
        return statuses

    assert run(app, scenario) == [202] * 4
    s = Settings()
    (t1, k1, ack), (t2, k2, raised), (t3, k3, resolve), (t4, k4, silence) = recorder.sent
    assert (t1, k1, ack["action"], ack["by"], ack["note"]) == (
        s.acks_topic, "entrance-east", "ack", "supervisor-1", "on it")  # fmt: skip
    assert (t2, k2, raised["action"], raised["incident_id"], raised["severity"]) == (
        s.acks_topic, "ticket-hall", "raise", "ticket-hall", "warning")  # fmt: skip
    assert (t3, k3, resolve["action"]) == (s.acks_topic, "west-plaza", "resolve")
    assert (t4, k4, silence["zone_id"], silence["by"]) == (
        s.silences_topic, "east-plaza", "east-plaza", "supervisor-1")  # fmt: skip
    assert silence["ends_at"] - silence["starts_at"] == 30 * 60_000


def test_bad_actions_are_refused_with_a_reason(centre, records):
    app, tokens, recorder = centre
    too_long = records.site.incidents.max_silence_s / 60 + 1

    async def scenario(client):
        auth = {"Authorization": f"Bearer {tokens['supervisor']}"}
        cases = [
            ("/api/silence", {**ACTS["/api/silence"][1], "minutes": too_long}),
            ("/api/silence", {**ACTS["/api/silence"][1], "minutes": 0}),
            ("/api/silence", {**ACTS["/api/silence"][1], "reason": " "}),
            ("/api/silence", {**ACTS["/api/silence"][1], "source_id": "cam-underpass"}),
            ("/api/manual", {**ACTS["/api/manual"][1], "zone_id": "atlantis"}),
            ("/api/manual", {**ACTS["/api/manual"][1], "severity": "bad"}),
            ("/api/ack", {"incident_id": "entrance-east/crowd/1"}),
            ("/api/resolve", ACTS["/api/ack"][1]),  # still open: not resolvable
        ]
        out = []
        for path, body in cases:
            r = await client.post(path, json=body, headers=auth)
            out.append((r.status, (await r.json())["error"]))
        return out

    answers = run(app, scenario)
    assert [s for s, _ in answers] == [400, 400, 400, 400, 400, 400, 404, 409]
    assert "at most 1440 minutes" in answers[0][1]
    assert recorder.sent == []


def test_page_login_sets_an_http_only_strict_cookie_and_logout_ends_it(centre):
    app, tokens, _ = centre

    async def scenario(client):
        bad = await client.post("/login", data={"token": "wrong"}, allow_redirects=False)
        r = await client.post("/login", data={"token": tokens["viewer"]}, allow_redirects=False)
        cookie = r.headers["Set-Cookie"]
        me = await client.get("/api/me")
        zones = await client.get("/api/zones")
        posted = await client.post("/api/ack", json=ACTS["/api/ack"][1])
        foreign = await client.post("/api/ack", json=ACTS["/api/ack"][1],
                                    headers={"Origin": "http://evil.example"})  # fmt: skip
        j = await client.post("/login", json={"token": tokens["operator"]})
        me2 = await client.get("/api/me")
        await client.post("/logout")
        after = await client.get("/api/me")
        return (bad.status, r.status, r.headers.get("Location"), cookie, me.status,
                await me.json(), zones.status, posted.status, foreign.status, j.status,
                await me2.json(), after.status)  # fmt: skip

    (bad, status, location, cookie, me_status, me, zones, posted, foreign, j, me2, after) = run(
        app, scenario
    )
    assert bad == 401
    assert (status, location) == (303, "/")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert tokens["viewer"] not in cookie
    assert me_status == 200 and me == {"name": "viewer-1", "role": "viewer"}
    assert zones == 200 and posted == 403 and foreign == 403
    assert j == 204 and me2 == {"name": "operator-1", "role": "operator"}
    assert after == 401


def test_api_shapes(centre, records):
    app, tokens, _ = centre

    async def scenario(client):
        auth = {"Authorization": f"Bearer {tokens['viewer']}"}
        out = {}
        for path in ("/api/site", "/api/zones", "/api/incidents", "/api/silences"):
            out[path] = await (await client.get(path, headers=auth)).json()
        return out

    got = run(app, scenario)
    site = got["/api/site"]
    assert site["site"] == {"id": "guangzhou-station", "name": records.site.site.name,
                            "name_zh": records.site.site.name_zh, "timezone": "Asia/Shanghai",
                            "language": records.site.site.language}  # fmt: skip
    assert site["max_silence_s"] == records.site.incidents.max_silence_s
    assert site["clock"] == {"simulated": False, "speed": None}  # live unless told otherwise
    zone_keys = {"id", "name", "name_zh", "kind", "area_m2", "warning", "critical", "polygon",
                 "response_plan", "response_plan_zh"}  # fmt: skip
    assert all(set(z) == zone_keys for z in site["zones"]) and len(site["zones"]) == 14
    zones = got["/api/zones"]
    assert set(zones) == {"site", "now", "stale_after_s", "zones"}
    assert len(zones["zones"]) == 14
    assert all({"density", "updated_ms", "stale", "history"} <= set(z) for z in zones["zones"])
    assert [i["zone_id"] for i in got["/api/incidents"]["incidents"]] == ["entrance-east", "west-plaza"]  # fmt: skip
    assert got["/api/silences"] == {"silences": []}


def test_event_stream_says_hello_then_pushes_what_the_reader_sees(centre, records):
    from streams.centre.server import CENTRE

    app, tokens, _ = centre

    async def scenario(client):
        auth = {"Authorization": f"Bearer {tokens['viewer']}"}
        r = await client.get("/api/events", headers=auth)
        assert r.headers["Content-Type"].startswith("text/event-stream")
        hello = await r.content.readuntil(b"\n\n")
        hub = app[CENTRE].hub
        while not hub.clients:
            await asyncio.sleep(0.01)
        feed = app[CENTRE].feed
        event = feed.view.apply_zone_state(records.zone_state(ts=records.t0 + 5000), records.t0)
        # the reader thread's call, from another thread
        await asyncio.get_running_loop().run_in_executor(
            None, hub.publish_threadsafe, "zone", event
        )
        pushed = await r.content.readuntil(b"\n\n")
        r.close()
        return hello, pushed

    hello, pushed = run(app, scenario)
    assert hello.startswith(b'event: hello\ndata: {"now": ')
    kind, data = pushed.decode().strip().split("\n")
    assert kind == "event: zone"
    zone = json.loads(data.removeprefix("data: "))
    assert zone["zone_id"] == "entrance-east" and zone["ts"] == records.t0 + 5000
    assert "point" in zone and "history" not in zone


def test_open_occupancy_csv_needs_no_login_and_has_finished_hours_only(centre, records):
    import csv
    import io
    import time

    from streams.centre.server import CENTRE

    app, _, _ = centre
    now = int(time.time() * 1000)
    hour = now - now % 3600_000
    view = app[CENTRE].feed.view
    for ts, density in ((hour - 3 * 3600_000, 1.234), (hour - 3 * 3600_000 + 60_000, 2.0),
                        (hour - 30 * 60_000, 5.0)):  # fmt: skip
        view.apply_zone_state(records.zone_state(zone="underpass", ts=ts, density=density), now)

    async def scenario(client):
        r = await client.get("/open/occupancy.csv")
        return r.status, r.headers["Content-Type"], await r.text()

    status, content_type, text = run(app, scenario)
    assert status == 200 and content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    underpass = [r for r in rows if r["zone_id"] == "underpass"]
    assert [(r["mean_density"], r["peak_density"], r["samples"]) for r in underpass] == [
        ("1.62", "2.00", "2")
    ]  # the last hour, not over an hour ago yet, is left out
    assert list(rows[0]) == ["hour_start", "zone_id", "zone_name", "mean_density",
                             "peak_density", "samples"]  # fmt: skip
