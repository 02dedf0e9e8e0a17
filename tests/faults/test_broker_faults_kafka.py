"""Broker faults, on a second broker of this test's own (free ports, own state folder; stopped
by pid whatever happens): the broker at 127.0.0.1:9092 is never touched."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.config.paths import bundled_site
from streams.config.settings import Settings
from streams.config.site import load_site
from streams.ops import procs
from streams.ops.kafka_local import BrokerConfig, down, up
from streams.testing import IMPORT_ROOT, Sandbox, free_port
from streams.testing_faults import (
    PacedProducer,
    delivery,
    expected,
    surge_story,
    terminate,
    wait_for,
)

pytestmark = pytest.mark.kafka

quiet = lambda _: None  # noqa: E731


@pytest.fixture(scope="module")
def spare_broker(tmp_path_factory: pytest.TempPathFactory):
    config = BrokerConfig(
        port=free_port(),
        controller_port=free_port(),
        state_dir=tmp_path_factory.mktemp("spare-kafka"),
        partitions=2,
    )
    try:
        up(config, timeout_s=120, log=quiet)
        yield config
    finally:
        down(config, grace_s=20, log=quiet)


@pytest.fixture
def box(spare_broker: BrokerConfig, tmp_path):
    sandbox = Sandbox(spare_broker.bootstrap, tmp_path)
    sandbox.ensure_topics()
    try:
        yield sandbox
    finally:
        sandbox.stop_worker()


def test_a_broker_restart_loses_no_reading_and_needs_no_worker_restart(spare_broker, box):
    site = load_site(Settings().site)
    ticks = surge_story(site, int(time.time() * 1000) - 1_620_000)
    want = expected(site, ticks)
    box.start_worker()
    worker_pid = box.proc.pid
    producer = PacedProducer(box, ticks, interval_s=0.08).start()  # ~25 s of readings
    try:
        assert wait_for(lambda: producer.sent_ticks >= 60, 60)
        down(spare_broker, log=quiet)
        time.sleep(5)  # the edge keeps producing into its buffer
        up(spare_broker, timeout_s=120, log=quiet)
        producer.join(timeout=180)
    finally:
        producer.stop()
    assert not producer.errors, producer.errors[:3]

    got = delivery(box, want, timeout=120)
    print(f"\nfaults: broker-restart {json.dumps(got.summary())}")
    assert got.zone_states_missing == []
    assert got.transitions_lost == [] and got.transitions_unexpected == []
    # The same worker process did it all, and applied each reading exactly once.
    assert box.proc.poll() is None and box.proc.pid == worker_pid and box.starts == 1
    seen = box.metrics()
    print(f"faults: broker-restart-counters {json.dumps(seen)}")
    assert seen["readings"] + seen["duplicates"] + seen["rejected"] >= want.readings
    assert seen["readings"] == want.readings


def test_sigterm_while_the_broker_is_down_stops_the_worker(spare_broker, box):
    box.start_worker()
    with box.producer() as producer:
        producer.send(
            {"source_id": "cam-underpass", "kind": "camera", "zone_id": "underpass",
             "ts": int(time.time() * 1000), "seq": 1, "count": 40}
        )  # fmt: skip
    box.read("zone-state", until=lambda rs: len(rs) >= 1)
    down(spare_broker, log=quiet)
    try:
        stopped_after = terminate(box, hang_guard_s=90)  # a hang guard, not a speed limit
        print(f"\nfaults: sigterm-broker-down stopped_after_s={stopped_after}")
        assert stopped_after is not None, "still running 90 s after SIGTERM"
    finally:
        up(spare_broker, timeout_s=120, log=quiet)  # for whoever uses the module's broker next


def test_the_simulator_keeps_running_through_a_broker_restart_and_loses_nothing(spare_broker, box):
    """The live edge process itself (``crowdsafe simulate``, wall-clock event times) rides out a
    broker restart: it keeps running, and every reading it sent is applied."""
    box.start_worker()
    sim = procs.spawn(
        [sys.executable, "-m", "streams.cli", "simulate", "--scenario", "normal",
         "--speed", "1", "--duration", "45", "--quiet"],
        log=subprocess.PIPE, env=box.env, cwd=IMPORT_ROOT,
    )  # fmt: skip
    try:
        assert wait_for(lambda: box.metrics()["readings"] > 0, 60), "no reading arrived"
        down(spare_broker, log=quiet)
        time.sleep(5)  # the simulator keeps producing into its buffer
        assert sim.poll() is None, "the simulator stopped while the broker was down"
        up(spare_broker, timeout_s=120, log=quiet)
        out, _ = sim.communicate(timeout=180)
    finally:
        procs.stop(sim)
    assert sim.returncode == 0, out
    sent = int(re.search(rb"done, (\d+) readings", out).group(1))
    assert wait_for(lambda: box.metrics()["readings"] >= sent, 120), (box.metrics(), sent)
    seen = box.metrics()
    assert seen["readings"] == sent and seen["rejected"] == 0
    assert box.proc.poll() is None and box.starts == 1  # the worker was not restarted


PETS_FRAMES = Path(__file__).resolve().parents[3] / "shared/data/vision/pets09-s2l1/img1"


@pytest.mark.skipif(not PETS_FRAMES.is_dir(), reason="shared PETS frames not present")
def test_the_camera_keeps_running_through_a_broker_restart_and_loses_no_reading(spare_broker, box):
    """``crowdsafe camera`` (HOG on the PETS frames, one reading a counted frame) rides out a
    broker restart: it keeps counting, and every reading it says it sent is on the readings
    topic, its seq numbers without a gap; the ones it sent while the broker was down included."""
    camera_id, topic = "pets-cam1", box.topic("readings")
    camera = procs.spawn(
        [sys.executable, "-m", "streams.cli", "camera", "--source", str(PETS_FRAMES),
         "--camera-id", camera_id, "--site", str(bundled_site("pets09-demo.toml")),
         "--every", "2", "--no-flow"],  # 75 of the 150 frames: ~25 s of counting
        log=subprocess.PIPE, env=box.env, cwd=IMPORT_ROOT,
    )  # fmt: skip
    try:
        assert box.consume(topic, until=len, timeout=60), "no reading arrived"
        down(spare_broker, log=quiet)
        broker_down_ms = time.time() * 1000
        time.sleep(5)  # the camera keeps counting into its producer's buffer
        assert camera.poll() is None, (
            "the camera stopped while the broker was down",
            camera.communicate()[0][-3000:],
        )
        broker_back_ms = time.time() * 1000
        up(spare_broker, timeout_s=120, log=quiet)
        err, _ = camera.communicate(timeout=180)
    finally:
        procs.stop(camera)
        up(spare_broker, timeout_s=120, log=quiet)  # a no-op unless an assert left it down
    assert camera.returncode == 0, err
    frames, sent = map(int, re.search(rb"(\d+) frames counted, (\d+) readings sent", err).groups())
    assert frames == 75 and sent == 75  # one zone polygon: one reading a counted frame

    def all_there(records: list) -> bool:
        return len({json.loads(r.value)["seq"] for r in records}) >= sent

    records = box.consume(topic, until=all_there, timeout=60)
    readings = [json.loads(r.value) for r in records]
    seqs = sorted({r["seq"] for r in readings})
    during = [r for r in records if broker_down_ms <= r.timestamp <= broker_back_ms]
    print(
        f"\nfaults: camera-broker-restart sent={sent} on_topic={len(readings)} "
        f"distinct_seq={len(seqs)} sent_while_down={len(during)}"
    )
    assert {r["source_id"] for r in readings} == {camera_id}
    # Every reading it sent, once each: the seqs it numbered, without a gap or a repeat.
    assert seqs == list(range(seqs[0], seqs[0] + sent)), "a reading of the camera is missing"
    assert len(readings) == sent, "a reading was written twice"
    # The restart fell inside the run: readings made while the broker was down (their
    # producer timestamps) were delivered after it came back.
    assert during
