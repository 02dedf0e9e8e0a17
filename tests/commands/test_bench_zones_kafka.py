"""The zones bench suite on a small site, end to end on the real broker: every step measures
something, nothing hangs, and it leaves no topic behind (timings are reported, never asserted)."""

from __future__ import annotations

import pytest

from streams.bench import zones

pytestmark = pytest.mark.kafka


def test_one_size_measures_every_step_and_deletes_its_topics(kafka_bootstrap, tmp_path):
    from kafka import KafkaAdminClient

    problems: list[str] = []
    out = zones._one_size(30, 300, tmp_path, problems)

    # Every step, including the restart from an empty state folder (which once applied 0 of 49
    # readings in 1 of ~10 runs: README Faults, fix 7).
    assert problems == []
    assert out["ticks"] == 10 and out["readings_per_s"] > 0 and out["worker_rss_mb"] > 0
    # Each zone's newest state in the changelog; a book of incidents each.
    assert out["zones_in_changelog"] == out["incident_books"] == 30
    assert 200 < out["zone_state_bytes_mean"] <= out["zone_state_bytes_max"] < 2048
    assert out["metrics_zones_labelled"] == 30  # under the default limit: every zone
    # Both restarts caught up with the tick produced while the worker was down.
    assert out["recovery_local_s"] >= out["recovery_local_ready_s"] > 0
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        left = [t for t in admin.list_topics() if out["sandbox"] in t]
    finally:
        admin.close()
    assert left == []
    assert out["recovery_empty_s"] >= out["recovery_empty_ready_s"] > 0
