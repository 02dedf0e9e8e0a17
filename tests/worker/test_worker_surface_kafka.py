"""What a real worker exposes and accepts: only its own pages, on loopback; a health endpoint
that tracks the agent; readings from a client with another partitioner are not split off."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import zlib

import pytest

from streams.ops.partitioning import partition_of

pytestmark = pytest.mark.kafka

T0 = int(time.time() * 1000)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, p = local.split(":")
        if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_only_our_pages_on_loopback_and_health_follows_the_agent(pipeline):
    pipeline.start_worker()
    base = f"http://127.0.0.1:{pipeline.web_port}"
    assert listening_addresses(pipeline.web_port) == {"127.0.0.1"}
    for internal in ("/table/zones/", "/router/", "/graph/", "/stats/"):
        status, _ = get(base + internal)
        assert status == 404, internal  # Faust's own pages are not served
    status, body = get(base + "/health")
    assert status == 200 and json.loads(body)["agent"] == "running"
    status, metrics = get(base + "/metrics")
    assert b"crowdsafe_agent_up 1.0" in metrics and b"# HELP crowdsafe_zones " in metrics
    status, some = get(base + "/metrics?name[]=crowdsafe_agent_up")  # as prometheus_client's
    assert status == 200 and b"crowdsafe_agent_up 1.0" in some and b"crowdsafe_zones" not in some


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's default 'consistent_random' partitioner for a keyed message (CRC32)."""
    return (zlib.crc32(key) & 0xFFFFFFFF) % partitions


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (Debian: kcat)")
def test_a_reading_placed_by_another_partitioner_is_rerouted(pipeline):
    n = int(pipeline.env["CROWDSAFE_TOPIC_PARTITIONS"])
    zone = next(
        z
        for z in ("main-square", "east-plaza", "west-plaza", "underpass", "ticket-hall")
        if crc32_partition(z.encode(), n) != partition_of(z.encode(), n)
    )
    pipeline.start_worker()
    with pipeline.producer() as producer:  # murmur2, as every producer of this project
        producer.send({"source_id": "cam-a", "kind": "camera", "zone_id": zone, "ts": T0,
                       "seq": 1, "count": 40})  # fmt: skip
    reading = {"source_id": "cam-b", "kind": "camera", "zone_id": zone, "ts": T0 + 1000,
               "seq": 1, "count": 60}  # fmt: skip
    # kcat's default partitioner: the message lands where murmur2 would not put it.
    line = f"{zone}\t{json.dumps(reading)}\n"
    result = subprocess.run(
        ["kcat", "-b", pipeline.bootstrap, "-P", "-t", pipeline.topic("readings"), "-K", "\t"],
        input=line, text=True, capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    first = pipeline.read("zone-state", until=lambda s: any(x["ts"] == T0 + 1000 for x in s))
    assert any(x["ts"] == T0 + 1000 for x in first), [(x["ts"] - T0, x["sources"]) for x in first]
    with pipeline.producer() as producer:
        producer.send({"source_id": "cam-a", "kind": "camera", "zone_id": zone,
                       "ts": T0 + 2000, "seq": 2, "count": 40})  # fmt: skip

    def last_seen(states: list[dict]) -> bool:
        return any(s["zone_id"] == zone and s["ts"] == T0 + 2000 for s in states)

    states = pipeline.read("zone-state", until=last_seen)
    state = next(s for s in states if s["zone_id"] == zone and s["ts"] == T0 + 2000)
    # One zone state fused from both cameras: the kcat reading reached the zone's own
    # partition, so the next murmur2-placed reading finds it there (not a split copy).
    assert state["sources"]["fresh"] == ["cam-a", "cam-b"]
    assert state["occupancy"] == 50.0
    status, metrics = get(f"http://127.0.0.1:{pipeline.web_port}/metrics")
    assert b"crowdsafe_readings_rerouted_total 1.0" in metrics
