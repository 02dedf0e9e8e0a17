"""Broker faults, on a second broker of this test's own (free ports, own state folder; stopped
by pid whatever happens): the broker at 127.0.0.1:9092 is never touched."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

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
