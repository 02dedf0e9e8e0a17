"""A real worker on a synthetic site with per-zone series limited (CROWDSAFE_METRICS_ZONE_LIMIT):
its /metrics has zone-labelled series for the first zones of the site file only, and every zone
in the per-kind aggregates."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config.synthetic import write_synthetic_site
from streams.edge.synthetic import SyntheticReadings
from streams.ops.topics import ensure_app_topics
from streams.testing import Sandbox

pytestmark = pytest.mark.kafka
ZONES, LIMIT = 40, 5


@pytest.fixture
def city(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Sandbox, object]]:
    site = write_synthetic_site(tmp_path / "city.toml", ZONES, seed=11)
    box = Sandbox(
        kafka_bootstrap,
        tmp_path,
        extra_env={"CROWDSAFE_SITE": str(tmp_path / "city.toml"),
                   "CROWDSAFE_METRICS_ZONE_LIMIT": str(LIMIT)},
    )  # fmt: skip
    ensure_app_topics(box.settings(), box.bootstrap, site=site)
    try:
        yield box, site
    finally:
        box.stop_worker()
        box.delete_topics()


def test_zone_series_stop_at_the_limit_and_every_zone_counts_by_kind(city):
    box, site = city
    feed = SyntheticReadings(site, seed=11)
    box.start_worker()
    with box.producer() as producer:
        for key, value in feed.tick(int(time.time() * 1000)):
            producer.send_raw(key, value)
    deadline = time.monotonic() + 60
    while box.metrics()["readings"] < feed.readings_per_tick and time.monotonic() < deadline:
        time.sleep(0.5)
    assert box.metrics()["readings"] == feed.readings_per_tick

    url = f"http://127.0.0.1:{box.web_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - loopback
    labelled = set(re.findall(r'zone="([^"]*)"', text))
    assert labelled == {z.id for z in site.zones[:LIMIT]}
    counted = re.findall(r"^crowdsafe_zones\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    assert sum(float(n) for n in counted) == ZONES
