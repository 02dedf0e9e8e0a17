"""The agent's table boundary: bytes in the table, a zone state out, unreadable bytes reset."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from streams.worker.agent import load_zone
from streams.worker.metrics import WorkerMetrics
from streams.zone.state import SourceState, ZoneState, decode_state, encode_state


def worker(zones: dict[str, bytes]) -> SimpleNamespace:
    return SimpleNamespace(zones=zones, metrics=WorkerMetrics())


def resets(w, zone: str) -> float | None:
    return w.metrics.registry.get_sample_value("crowdsafe_zone_state_resets_total", {"zone": zone})


def test_a_stored_state_is_decoded_and_a_missing_one_is_none():
    state = ZoneState(ts=5, sources={"cam": SourceState("camera", 3, 5)})
    w = worker({"underpass": encode_state(state)})
    assert load_zone(w, "underpass") == state
    assert load_zone(w, "metro-stairs") is None
    assert resets(w, "underpass") is None


def test_a_v1_json_state_is_migrated():
    w = worker({"underpass": b'{"sources": {}, "gate_occupancy": 7.0, "episodes": {}}'})
    assert load_zone(w, "underpass").gate_occupancy == 7.0


def test_an_unreadable_state_is_reset_with_a_warning_and_a_count(caplog):
    w = worker({"underpass": b"\x93corrupt", "ticket-hall": encode_state(ZoneState(ts=1))})
    with caplog.at_level(logging.WARNING):
        state = load_zone(w, "underpass")
    assert state == ZoneState()
    assert resets(w, "underpass") == 1.0 and resets(w, "ticket-hall") is None
    assert any(
        "underpass" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )
    # The fresh state is written back: the next batch (or sweep) reads it without a warning.
    assert decode_state(w.zones["underpass"]) == ZoneState()
    load_zone(w, "underpass")
    assert resets(w, "underpass") == 1.0
