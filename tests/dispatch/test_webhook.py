"""Webhook delivery against a real HTTP server on the loopback (aiohttp.web), with the back-off
sleep injected so retries cost no time; and one delivery's records (audit, dead letter, counts)
with the worker's topics faked."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.config.incidents import Route
from streams.dispatch.webhook import (
    MAX_BACKOFF_S,
    _ids,
    backoff_delay,
    deliver_event,
    post_json,
)
from streams.testing import free_port
from streams.worker.metrics import WorkerMetrics

BODY = json.dumps({"v": 2, "incident_id": "ticket-hall/crowd/1", "zone_id": "ticket-hall"}).encode()


class Receiver:
    """Answers each POST with the next of ``statuses`` (the last one for ever after) and keeps
    what it got. ``hang``: attempt numbers (1-based) left unanswered until the test ends."""

    def __init__(self, statuses: list[int], hang: frozenset[int] = frozenset()) -> None:
        self.statuses, self.hang = statuses, hang
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.content_types.append(request.headers.get("Content-Type", ""))
        n = len(self.bodies)
        if n in self.hang:
            await self.release.wait()
        return web.Response(status=self.statuses[min(n, len(self.statuses)) - 1])


@asynccontextmanager
async def serving(receiver: Receiver):
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        receiver.release.set()
        await runner.cleanup()


class Sleeps:
    """The injected sleep: records the delays asked for, waits for none."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def deliver(statuses, hang=frozenset(), **kw):
    receiver, sleeps = Receiver(statuses, hang), Sleeps()

    async def run():
        async with serving(receiver) as url:
            return await post_json(url, BODY, sleep=sleeps, **kw)

    return asyncio.run(run()), receiver, sleeps


def test_5xx_and_429_are_retried_with_doubling_backoff_until_accepted():
    result, receiver, sleeps = deliver([503, 503, 429, 200], max_attempts=5, backoff_s=0.5)

    assert result.ok and result.status == 200 and result.error is None
    assert result.attempts == 4
    assert sleeps.asked == [0.5, 1.0, 2.0] == list(result.delays)
    assert receiver.bodies == [BODY] * 4  # the same bytes every time
    assert set(receiver.content_types) == {"application/json"}
    assert result.describe() == "HTTP 200 after 4 attempts"


def test_other_4xx_is_final_at_once():
    result, receiver, sleeps = deliver([400, 200], max_attempts=5)

    assert not result.ok
    assert (result.attempts, result.status) == (1, 400)
    assert result.error == "HTTP 400 Bad Request"
    assert sleeps.asked == [] and len(receiver.bodies) == 1
    assert result.describe() == "HTTP 400 Bad Request after 1 attempt"


def test_failing_every_attempt_stops_at_max_attempts():
    result, receiver, sleeps = deliver([500], max_attempts=3, backoff_s=1)

    assert not result.ok and result.attempts == 3 and len(receiver.bodies) == 3
    assert result.error == "HTTP 500 Internal Server Error"
    assert sleeps.asked == [1, 2]


def test_a_timeout_is_retried():
    result, receiver, _ = deliver([200], hang=frozenset({1}), timeout_s=0.2, max_attempts=2)

    assert result.ok and result.attempts == 2 and len(receiver.bodies) == 2


def test_unreachable_is_retried_then_reported():
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there

    result = asyncio.run(post_json(url, BODY, max_attempts=4, backoff_s=0.25, sleep=sleeps))

    assert not result.ok and result.attempts == 4 and result.status is None
    assert "ClientConnectorError" in result.error
    assert sleeps.asked == [0.25, 0.5, 1.0]


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(10, k) for k in range(5)] == [10, 20, 40, MAX_BACKOFF_S, MAX_BACKOFF_S]
    assert backoff_delay(1, 10_000) == MAX_BACKOFF_S  # no overflow however many retries


# One delivery as the worker's agent makes it, with the topics faked (records kept, not sent).


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict]] = []

    async def send(self, key, value):
        self.sent.append((key, json.loads(value)))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)  # what the broker's acknowledgement resolves
        return done


def fake_worker():
    topics = SimpleNamespace(audit=FakeTopic(), deadletter=FakeTopic())
    return SimpleNamespace(topics=topics, metrics=WorkerMetrics(CollectorRegistry()))


def fake_event(value: bytes, age_s: float = 0.0):
    message = SimpleNamespace(
        key=b"ticket-hall", value=value, topic="crowd.dispatch.cad", partition=1, offset=7,
        timestamp=time.time() - age_s,
    )  # fmt: skip
    return SimpleNamespace(message=message)


def count(w, name: str, **labels) -> float:
    return w.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("status", [200, 404])
def test_deliver_event_audits_and_dead_letters(status):
    w, receiver = fake_worker(), Receiver([503, status])

    async def run():
        async with serving(receiver) as url:
            route = Route(id="cad", webhook=url, max_attempts=2, backoff_s=0.01)
            await deliver_event(w, route, fake_event(BODY))

    asyncio.run(run())

    [(key, audit)] = w.topics.audit.sent
    assert key == b"ticket-hall"
    assert audit["route"] == "cad" and audit["actor"] == "crowdsafe"
    assert (audit["incident_id"], audit["zone_id"]) == ("ticket-hall/crowd/1", "ticket-hall")
    assert count(w, "crowdsafe_webhook_retries_total", route="cad") == 1
    if status == 200:
        assert audit["action"] == "deliver" and audit["detail"] == "HTTP 200 after 2 attempts"
        assert w.topics.deadletter.sent == []
        assert count(w, "crowdsafe_webhook_deliveries_total", route="cad", outcome="delivered") == 1
        return
    reason = "webhook cad: HTTP 404 Not Found after 2 attempts"
    assert audit["action"] == "delivery-failed" and audit["reason"] == reason
    [(key, dead)] = w.topics.deadletter.sent
    assert key == b"ticket-hall" and dead["reason"] == reason
    assert (dead["topic"], dead["partition"], dead["offset"]) == ("crowd.dispatch.cad", 1, 7)
    assert base64.b64decode(dead["value_b64"]) == BODY
    assert count(w, "crowdsafe_webhook_deliveries_total", route="cad", outcome="failed") == 1


def test_a_record_older_than_the_routes_max_age_is_not_posted_but_audited():
    w, receiver = fake_worker(), Receiver([200])

    async def run():
        async with serving(receiver) as url:
            route = Route(id="cad", webhook=url, max_age_s=600)
            await deliver_event(w, route, fake_event(BODY, age_s=3600))

    asyncio.run(run())
    assert receiver.bodies == []  # history is not news
    [(_, audit)] = w.topics.audit.sent
    assert audit["action"] == "delivery-skipped" and "3600 s old" in audit["reason"]
    assert count(w, "crowdsafe_webhook_deliveries_total", route="cad", outcome="skipped") == 1


def test_ids_of_a_body_that_is_not_an_object_are_none():
    for body in (b"[1]", b"not json", b"[" * 100_000, b'{"incident_id": 3}'):
        assert _ids(body) == (None, None)


def test_an_empty_message_is_dead_lettered_without_a_post():
    w = fake_worker()
    route = Route(id="cad", webhook="http://127.0.0.1:9/never")

    asyncio.run(deliver_event(w, route, fake_event(b"")))

    [(_, dead)] = w.topics.deadletter.sent
    assert dead["reason"] == "webhook cad: empty message, not posted"
    [(_, audit)] = w.topics.audit.sent
    assert audit["action"] == "delivery-failed" and audit["incident_id"] is None
