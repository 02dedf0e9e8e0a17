"""How soon the command centre pushes a record to the page, on the real broker
(``KAFKA_BOOTSTRAP``): a centre of its own sandbox, one event-stream client, and zone-state
records produced one by one (acks=all); for each, the time from the broker's acknowledgement
(the record is on the broker) to its ``event: zone`` on the stream (``push_latency_ms``), and
from the send call (``send_to_push_ms``, which adds the produce round trip).

Every wait has a deadline; a run that misses one reports ``null`` and a diagnosis in
``problems`` instead of hanging.
"""

from __future__ import annotations

import http.client
import json
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from streams.config.settings import get_settings
from streams.testing import Sandbox

ZONE = "ticket-hall"


class _Stream:
    """The centre's ``/api/events`` read in a thread: arrival time of each zone event's ts."""

    def __init__(self, port: int, token: str) -> None:
        self.arrived: dict[int, float] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"/api/events answered {self.resp.status}")
        self.hello = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        kind = None
        try:
            while line := self.resp.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    kind = text.removeprefix("event: ")
                elif text.startswith("data: "):
                    if kind == "hello":
                        self.hello.set()
                    elif kind == "zone":
                        data = json.loads(text.removeprefix("data: "))
                        if data["zone_id"] == ZONE:
                            self.arrived.setdefault(data["ts"], time.monotonic())
        except (OSError, ValueError):
            pass  # closed by close()

    def close(self) -> None:
        self.conn.sock and self.conn.sock.close()
        self.conn.close()


def _zone_state(ts: int) -> bytes:
    import msgspec

    from streams.config.site import load_site
    from streams.schema.payloads import SourceStatus, ZoneState

    site = load_site(get_settings().site)
    z = site.zone(ZONE)
    t = site.thresholds(z)
    record = ZoneState(
        v=1, zone_id=ZONE, name=z.name, kind=z.kind, ts=ts, occupancy=100.0,
        area_m2=z.area_m2, density=100.0 / z.area_m2, los="A", warning=t.warning,
        critical=t.critical, sources=SourceStatus(fresh=["bench"], stale=[], offline=[]),
        anomaly_score=0.0, minutes_to_warning=None, minutes_to_critical=None,
        minutes_to_critical_low=None, minutes_to_critical_high=None,
    )  # fmt: skip
    return msgspec.json.encode(record)


def run(quick: bool = False) -> dict:
    from kafka import KafkaProducer

    from streams.config.kafka import client_kwargs

    settings = get_settings()
    n = 30 if quick else 200
    problems: list[str] = []
    acked_to_push: list[float] = []
    sent_to_push: list[float] = []
    with tempfile.TemporaryDirectory(prefix="crowdsafe-bench-centre-") as tmp_dir:
        box = Sandbox(settings.kafka_bootstrap, Path(tmp_dir))
        box.ensure_topics()
        token = secrets.token_urlsafe(18)
        stream = producer = None
        try:
            box.start_centre(env={"CROWDSAFE_TOKEN": token})
            stream = _Stream(box.centre_port, token)
            if not stream.hello.wait(30):
                raise TimeoutError("no hello on the event stream in 30 s")
            producer = KafkaProducer(**client_kwargs(box.settings()), acks="all", linger_ms=0)
            topic = box.topic("zone-state")
            base = int(time.time() * 1000)
            times: dict[int, tuple[float, float]] = {}
            for i in range(n):
                ts = base + i
                sent = time.monotonic()
                producer.send(topic, key=ZONE.encode(), value=_zone_state(ts)).get(30)
                times[ts] = (sent, time.monotonic())
                deadline = time.monotonic() + 10
                while ts not in stream.arrived and time.monotonic() < deadline:
                    time.sleep(0.001)
                if ts not in stream.arrived:
                    problems.append(f"record {i}: not pushed within 10 s")
                time.sleep(0.05)
            for ts, (sent, acked) in times.items():
                if ts in stream.arrived:
                    sent_to_push.append((stream.arrived[ts] - sent) * 1000)
                    acked_to_push.append(max(0.0, stream.arrived[ts] - acked) * 1000)
        except Exception as exc:  # noqa: BLE001 - a diagnosis, never a hang or a traceback
            problems.append(f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            if producer is not None:
                producer.close(timeout=5)
            if stream is not None:
                stream.close()
            box.stop_centre()

    def stat(xs: list[float], q: float | None = None) -> float | None:
        if not xs:
            return None
        if q is None:
            return round(statistics.median(xs), 1)
        return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))], 1)

    return {
        "records": n,
        "pushed": len(acked_to_push),
        "push_latency_ms_median": stat(acked_to_push),
        "push_latency_ms_p95": stat(acked_to_push, 0.95),
        "push_latency_ms_max": round(max(acked_to_push), 1) if acked_to_push else None,
        "send_to_push_ms_median": stat(sent_to_push),
        "problems": problems,
    }
