"""Webhooks: each message of a route's topic (``crowd.dispatch.<route>``) POSTed to the route's
``webhook`` URL, so an SMS, radio or computer-aided-dispatch gateway can follow a route without a
Kafka client.

:func:`post_json` is one delivery, retried with back-off; it knows nothing of Faust.
:func:`register_webhooks` gives the worker one agent per route with a webhook: it POSTs each
message's value as it is (the route's JSON ``Dispatch`` record), then records the outcome on
``crowd.audit`` (``deliver``, or ``delivery-failed`` with the reason) and, on failure, the message
on ``crowd.deadletter``. A webhook that is down delays only its own route: every route is its own
agent, apart from the readings.

The URL is the operator's choice (the site file): the worker POSTs wherever it points, with no
check of where that is; keep site files as trusted as the worker's own configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0  # the back-off doubles after each failed attempt, up to this
HEADERS = {"Content-Type": "application/json", "User-Agent": "crowdsafe-webhook"}

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery came to: accepted (``ok``, a 2xx answer) or not, after how many
    attempts, the last HTTP status (None: no answer) or error, and the back-offs waited."""

    ok: bool
    attempts: int
    status: int | None
    error: str | None
    delays: tuple[float, ...] = ()

    def describe(self) -> str:
        """E.g. ``HTTP 200 after 2 attempts``, ``HTTP 500 Internal Server Error after 5
        attempts``, ``ClientConnectorError: Cannot connect to host ... after 3 attempts``."""
        what = f"HTTP {self.status}" if self.ok else self.error
        if not self.attempts:
            return str(what)
        plural = "" if self.attempts == 1 else "s"
        return f"{what} after {self.attempts} attempt{plural}"


def backoff_delay(backoff_s: float, retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (0: the first): ``backoff_s`` doubled each
    time, at most :data:`MAX_BACKOFF_S`."""
    return min(backoff_s * 2 ** min(retry, 32), MAX_BACKOFF_S)


def _retryable(status: int) -> bool:
    """Worth another attempt: the server's trouble (5xx) or too many requests (429). Any other
    refusal (4xx, and redirects, which are not followed) would be refused again."""
    return status >= 500 or status == 429


async def post_json(
    url: str,
    body: bytes,
    *,
    timeout_s: float = 5.0,
    max_attempts: int = 5,
    backoff_s: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    session: aiohttp.ClientSession | None = None,
) -> DeliveryResult:
    """POST ``body`` (``Content-Type: application/json``) to ``url`` until a 2xx answer, at
    most ``max_attempts`` times, each within ``timeout_s``; a connection error, a timeout, HTTP
    5xx or 429 is retried after :func:`backoff_delay` (waited with ``sleep``), anything else is
    final. Never raises (but for cancellation): the outcome is the result. ``session``: one to
    reuse (its connections); by default one for this call."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await post_json(
                url, body, timeout_s=timeout_s, max_attempts=max_attempts,
                backoff_s=backoff_s, sleep=sleep, session=own,
            )  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    delays: list[float] = []
    status: int | None = None
    error: str | None = None
    for attempt in range(1, max_attempts + 1):
        if attempt > 1:
            delays.append(backoff_delay(backoff_s, attempt - 2))
            await sleep(delays[-1])
        status, error, again = await _attempt(session, url, body, timeout, timeout_s)
        if error is None:
            return DeliveryResult(True, attempt, status, None, tuple(delays))
        if not again:
            break
    return DeliveryResult(False, attempt, status, error, tuple(delays))


async def _attempt(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    timeout: aiohttp.ClientTimeout,
    timeout_s: float,
) -> tuple[int | None, str | None, bool]:
    """One POST: (status, error or None when accepted, whether to try again)."""
    try:
        async with session.post(
            url, data=body, headers=HEADERS, timeout=timeout, allow_redirects=False
        ) as resp:
            if 200 <= resp.status < 300:
                return resp.status, None, False
            return (
                resp.status,
                f"HTTP {resp.status} {resp.reason or ''}".strip(),
                _retryable(resp.status),
            )
    except TimeoutError:
        return None, f"timed out after {timeout_s:g} s", True
    except aiohttp.InvalidURL as exc:
        return None, f"invalid URL: {exc}", False
    except (aiohttp.ClientError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], True
    except Exception as exc:  # noqa: BLE001 - an outcome, never a crash of the caller
        return None, f"{type(exc).__name__}: {exc}"[:500], False


def register_webhooks(w) -> None:  # w: streams.worker.app.WorkerApp (not imported: no cycle)
    """One agent per site route with a ``webhook``, on that route's topic."""
    for route in w.site.routes:
        if route.webhook is not None:
            _register(w, route)


def _register(w, route) -> None:  # route: streams.config.incidents.Route
    import faust

    from streams.worker.agent import fail_batch

    @w.faust.agent(w.topics.dispatch[route.id], name=f"webhook-{route.id}", concurrency=1)
    async def deliver(stream: faust.StreamT) -> None:
        async with aiohttp.ClientSession() as session:
            async for event in stream.events():
                try:
                    await deliver_event(w, route, event, session)
                except Exception:  # noqa: BLE001 - the broker refused the audit or dead letter
                    # As the readings agent does: stop without acknowledging the message, so
                    # a restarted worker delivers it again rather than losing its record.
                    fail_batch(w, [event])


async def deliver_event(w, route, event, session: aiohttp.ClientSession | None = None) -> None:
    """POST one message of ``route``'s topic and record the outcome: an audit record, and on
    failure a dead letter and a count, each confirmed by the broker before returning (so the
    message's offset is committed only after them)."""
    from streams.worker.publish import send_dead_letter

    msg = event.message
    body = msg.value or b""
    age_s = time.time() - msg.timestamp if msg.timestamp else 0.0
    if age_s > route.max_age_s:
        # History, not news: a webhook added to a route that has run for months must not POST
        # its whole past (its agent starts from the topic's beginning) to a dispatch gateway.
        why = f"record {age_s:.0f} s old (route max_age_s {route.max_age_s:g}): not posted"
        w.metrics.webhook_deliveries.labels(route.id, "skipped").inc()
        incident_id, zone_id = _ids(body)
        await _audit(w, msg.key, route.id, "delivery-skipped", incident_id, zone_id, why, why)
        return
    if body:
        result = await post_json(
            route.webhook, body, timeout_s=route.timeout_s, max_attempts=route.max_attempts,
            backoff_s=route.backoff_s, session=session,
        )  # fmt: skip
    else:
        result = DeliveryResult(False, 0, None, "empty message, not posted")
    metrics = w.metrics
    if result.attempts > 1:
        metrics.webhook_retries.labels(route.id).inc(result.attempts - 1)
    incident_id, zone_id = _ids(body)
    if result.ok:
        metrics.webhook_deliveries.labels(route.id, "delivered").inc()
        await _audit(w, msg.key, route.id, "deliver", incident_id, zone_id, result.describe())
        return
    reason = f"webhook {route.id}: {result.describe()}"
    log.warning("%s (%s offset %d): dead-lettered", reason, msg.topic, msg.offset)
    metrics.webhook_deliveries.labels(route.id, "failed").inc()
    await (await send_dead_letter(w, event, reason))
    await _audit(w, msg.key, route.id, "delivery-failed", incident_id, zone_id, reason, reason)


def _ids(body: bytes) -> tuple[str | None, str | None]:
    """The ``incident_id`` and ``zone_id`` of a JSON body, where it has them."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or nested too deep to read): no ids
        return None, None
    if not isinstance(doc, dict):
        return None, None
    incident_id, zone_id = doc.get("incident_id"), doc.get("zone_id")
    return (
        incident_id if isinstance(incident_id, str) else None,
        zone_id if isinstance(zone_id, str) else None,
    )


async def _audit(w, key, route_id, action, incident_id, zone_id, detail, reason=None) -> None:
    from streams.schema.incident import AuditRecord
    from streams.worker.publish import to_json

    record = AuditRecord(
        v=1,
        ts=int(time.time() * 1000),
        actor="crowdsafe",
        action=action,
        zone_id=zone_id,
        incident_id=incident_id,
        silence_id=None,
        route=route_id,
        detail=detail,
        reason=reason,
    )
    await (await w.topics.audit.send(key=key, value=to_json(record)))
