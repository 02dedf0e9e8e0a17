"""The worker's webhook agents: one per site route with a ``webhook``, on that route's topic.

Each POSTs every message's value as it is (the route's JSON ``Dispatch`` record) with
:func:`streams.dispatch.webhook.post_json`, then records the outcome on ``crowd.audit``
(``deliver``; ``delivery-failed`` with the reason; ``delivery-skipped`` for a record older than
the route's ``max_age_s``) and, on failure, the message on ``crowd.deadletter``. A webhook that
is down delays only its own route: every route is its own agent, apart from the readings.
"""

from __future__ import annotations

import logging
import time

import aiohttp

from streams.dispatch.webhook import DeliveryResult, _ids, post_json
from streams.schema.incident import AuditRecord
from streams.worker.publish import send_dead_letter, to_json

log = logging.getLogger(__name__)


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


async def _audit(w, key, route_id, action, incident_id, zone_id, detail, reason=None) -> None:
    record = AuditRecord.of(
        int(time.time() * 1000), "crowdsafe", action, detail, zone_id=zone_id,
        incident_id=incident_id, route=route_id, reason=reason,
    )  # fmt: skip
    await (await w.topics.audit.send(key=key, value=to_json(record)))
