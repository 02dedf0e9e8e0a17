"""Web views of the worker: its JSON feeds (what this worker holds), health and Prometheus
metrics. The command-centre page is served by ``crowdsafe centre`` (streams/centre/), which
sees every worker's zones through the topics.

Registered on one app by :func:`register_views`; nothing else of Faust's web is meant to be
served to users."""

from __future__ import annotations

import time

import msgspec
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from streams.worker.metrics import exposition


def register_views(w) -> None:  # w: streams.worker.app.WorkerApp
    app, site = w.faust, w.site

    @app.page("/api/zones")
    class Zones(View):
        async def get(self, request: Request) -> Response:
            # Zones with no reading yet still show, with their thresholds, so a dead zone is visible.
            known = {
                z.id: {
                    "zone_id": z.id,
                    "name": z.name,
                    "kind": z.kind,
                    "area_m2": z.area_m2,
                    "warning": site.thresholds(z).warning,
                    "critical": site.thresholds(z).critical,
                    "ts": None,
                    "density": None,
                }
                for z in site.zones
            }
            return self.json(
                {
                    "site": site.site.name,
                    # The page measures "updated N s ago" and staleness against the worker's clock,
                    # so a skewed browser clock in the command centre can't hide a silent zone.
                    "now": int(time.time() * 1000),
                    "stale_after_s": site.defaults.stale_after_s,
                    # Published records as their JSON (the same shape as crowd.zone-state).
                    "zones": [
                        msgspec.to_builtins(w.view.zone_states[zone_id])
                        if zone_id in w.view.zone_states
                        else placeholder
                        for zone_id, placeholder in known.items()
                    ],
                }
            )

    @app.page("/api/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            try:
                limit = max(1, min(int(request.query.get("limit", 50)), 200))
            except ValueError:
                return self.json({"error": "limit must be a whole number"}, status=400)
            recent = reversed(w.view.alerts[-limit:])
            return self.json({"alerts": [msgspec.to_builtins(a) for a in recent]})

    @app.page("/api/incidents")
    class Incidents(View):
        """The open incidents of the zones this worker holds: the newest record of each one not
        resolved (crowd.alerts version 2), most severe and newest first."""

        async def get(self, request: Request) -> Response:
            rank = {"critical": 0, "warning": 1}
            records = sorted(w.view.incidents.values(), key=lambda r: (rank[r.severity], -r.ts))
            return self.json({"incidents": [msgspec.to_builtins(r) for r in records]})

    @app.page("/health")
    class HealthView(View):
        """200 while the processing agent runs, 503 when it has stopped (for probes)."""

        async def get(self, request: Request) -> Response:
            status, body = w.health.report()
            return self.json(body, status=status)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            names = request.query.getall("name[]", [])  # type: ignore[attr-defined]
            body = exposition(w.metrics.registry, names)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])
