"""The command centre against real workers on the real broker: two workers sharing the
partitions and one centre; a surge; one worker killed; the centre restarted; an acknowledgement
through the API found on crowd.audit with the user's name."""

from __future__ import annotations

import threading
import time

import pytest

from streams.testing_faults import kill, partner, wait_for, zones_served

pytestmark = pytest.mark.kafka

SURGE_ZONE = "entrance-east"


class LiveReadings:
    """Every source's reading once a second, stamped with the wall clock (the normal
    scenario's values), in a thread, until stopped."""

    def __init__(self, box) -> None:
        self.box, self.sent, self.errors = box, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from streams.config.site import load_site
        from streams.edge.simulator import Simulator

        site = load_site(self.box.settings().site)
        try:
            with self.box.producer() as producer:
                for _, readings in Simulator(site, "normal").ticks():
                    if self._stop.is_set():
                        return
                    now = int(time.time() * 1000)
                    by_zone: dict[str, list[dict]] = {}
                    for r in readings:
                        by_zone.setdefault(r["zone_id"], []).append({**r, "ts": now})
                    for batch in by_zone.values():
                        producer.send_batch(batch)
                    producer.flush()
                    self.sent += 1
                    self._stop.wait(1.0)
        except Exception as exc:  # noqa: BLE001 - checked by the test
            self.errors.append(repr(exc))

    def __enter__(self) -> LiveReadings:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_one_centre_shows_every_zone_of_two_workers_through_a_kill_and_its_own_restart(
    pipeline, tmp_path
):
    box = pipeline
    other = partner(box, tmp_path / "second")
    operator = box.add_user("li.wei", "operator")
    viewer = box.add_user("wang.fang", "viewer")
    # Zones not updated for 4 s are stale (the site's 60 s would outlast the rebalance).
    centre_env = {"CROWDSAFE_CENTRE_STALE_AFTER_S": "4"}
    try:
        box.start_worker()
        other.start_worker()
        box.start_centre(env=centre_env)
        site_zones = [z["id"] for z in box.centre_get("/api/site", viewer)["zones"]]
        assert len(site_zones) == 14

        box.simulate_surge_until_now()

        # Every zone of both workers, and the surge's incident once critical.
        def all_zones_and_the_surge():
            zones = box.centre_get("/api/zones", viewer)["zones"]
            incidents = box.centre_get("/api/incidents", viewer)["incidents"]
            seen = all(z["density"] is not None for z in zones)
            surge = [
                i
                for i in incidents
                if i["zone_id"] == SURGE_ZONE
                and i["category"] == "crowd"
                and i["severity"] == "critical"
            ]
            return seen and surge and (zones, surge[0])

        found = wait_for(all_zones_and_the_surge, 120, interval=0.5)
        assert found, box.centre_get("/api/zones", viewer)
        zones, surge = found
        assert [z["zone_id"] for z in zones] == site_zones
        assert all(len(z["history"]) >= 2 for z in zones)  # the surge's last 13 min
        served = (zones_served(box), zones_served(other))
        assert served[0] and served[1], "the two workers did not share the zones"
        assert served[0] | served[1] == set(site_zones)

        # A viewer may not acknowledge; an operator may, and signs with their own name.
        body = {"incident_id": surge["incident_id"], "note": "unit 12 on site", "by": "forged"}
        status, answer = box.centre_post("/api/ack", body, viewer)
        assert status == 403, answer
        status, answer = box.centre_post("/api/ack", body, operator)
        assert status == 202, answer
        assert answer["sent"]["by"] == "li.wei"

        def acknowledged(audit):
            return any(
                a["action"] == "acknowledge" and a["incident_id"] == surge["incident_id"]
                for a in audit
            )

        audit = box.read("audit", until=acknowledged)
        acks = [a for a in audit if a["action"] == "acknowledge"]
        assert [(a["actor"], a["reason"]) for a in acks] == [("li.wei", "unit 12 on site")]

        def acked_on_centre():
            incidents = box.centre_get("/api/incidents", viewer)["incidents"]
            return any(i["incident_id"] == surge["incident_id"] and i["acknowledged_by"]
                       == "li.wei" for i in incidents)  # fmt: skip

        assert wait_for(acked_on_centre, 60), "the acknowledgement never reached the centre"

        # Kill the worker holding the surge zone while readings flow.
        with LiveReadings(box) as live:
            assert wait_for(lambda: live.sent >= 3, 30)
            victim = box if SURGE_ZONE in served[0] else other
            victims_zones = zones_served(victim)
            kill(victim)
            killed_ms = int(time.time() * 1000)
            stale_seen: set[str] = set()
            listed_every_time = True

            def recovered():
                nonlocal listed_every_time
                zones = box.centre_get("/api/zones", viewer)["zones"]
                listed_every_time &= [z["zone_id"] for z in zones] == site_zones
                stale_seen.update(z["zone_id"] for z in zones if z["stale"])
                fresh = all(not z["stale"] and z["updated_ms"] > killed_ms for z in zones)
                return stale_seen and fresh

            assert wait_for(recovered, 150, interval=0.2), (stale_seen, box.log_tail())
            assert not live.errors
        assert listed_every_time  # every zone stayed on the centre
        assert stale_seen & victims_zones  # the gap was marked while nobody published them

        # A restarted centre shows the same open incidents (the acknowledgement included).
        before = box.centre_get("/api/incidents", viewer)["incidents"]
        box.stop_centre()
        box.start_centre(env=centre_env)
        after = box.centre_get("/api/incidents", viewer)["incidents"]
        assert {i["incident_id"] for i in after} == {i["incident_id"] for i in before}
        again = next(i for i in after if i["incident_id"] == surge["incident_id"])
        assert again["acknowledged_by"] == "li.wei"
    finally:
        box.stop_centre()
        other.stop_worker()
