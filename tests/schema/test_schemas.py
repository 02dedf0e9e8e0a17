"""The published JSON Schemas match the models, and every record the worker makes fits them."""

import json

import msgspec
import pytest
from jsonschema import ValidationError

from streams.commands.schemas import default_dir, schema_files
from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.payloads import Alert, Reading, ReadingBatch, ZoneState
from streams.worker.publish import to_json
from streams.zone.processor import ZoneProcessor

SITE = load_site(bundled_site())


def test_committed_schema_files_are_those_of_the_models():
    for name, text in schema_files().items():
        path = default_dir() / name
        assert path.exists(), f"run `crowdsafe schemas`: {name} is missing"
        assert path.read_text() == text, f"run `crowdsafe schemas`: {name} is out of date"


def published(record: msgspec.Struct, model: type[msgspec.Struct]) -> msgspec.Struct:
    return msgspec.json.decode(to_json(record), type=model)


def test_every_zone_state_and_alert_of_a_surge_and_a_blind_camera_fits_its_schema(schema_file):
    kinds = set()
    for scenario in ("surge", "blind-camera"):
        sim = Simulator(SITE, scenario, start_ms=1_764_000_000_000)
        p, states = ZoneProcessor(SITE), {}
        for ts, rs in sim.ticks():
            if ts - sim.start_ms > sim.length_s * 1000:
                break
            for r in rs:
                out = p.apply(r["zone_id"], states.get(r["zone_id"]), [msgspec.convert(r, Reading)])
                states[r["zone_id"]] = out.state
                # Structs are not checked when built: encode as the worker does, then decode
                # with the published model (types, bounds, no unknown fields).
                for zone_state in out.zone_states:
                    assert published(zone_state, ZoneState) == zone_state
                    schema_file("zone-state").validate(json.loads(to_json(zone_state)))
                for alert in out.alerts:
                    kinds.add(published(alert, Alert).kind)
                    schema_file("alert", 1).validate(json.loads(to_json(alert)))
    assert kinds == {"density", "forecast", "source-offline"}  # anomaly: still warming up


README_READING = {
    "v": 1,
    "source_id": "gate-metro",
    "kind": "gate",
    "zone_id": "metro-interchange",
    "ts": 1764000000000,
    "seq": 42,
    "entered": 31,
    "exited": 12,
}


def test_the_schema_files_accept_the_readme_example_and_refuse_what_the_models_refuse(schema_file):
    schema_file("reading").validate(README_READING)
    schema_file("reading-batch").validate({"v": 1, "readings": [README_READING]})
    alert = {
        "v": 1,
        "alert_id": "z/crowding/1",
        "zone_id": "z",
        "zone_name": "Z",
        "kind": "crowding",  # a kind registered later fits too
        "severity": "warning",
        "state": "raised",
        "value": None,
        "threshold": 2.0,
        "started_at": 1,
        "ts": 1,
        "message": "m",
    }
    schema_file("alert", 1).validate(alert)  # version 1: deprecated, still documented
    assert msgspec.convert(alert, Alert).kind == "crowding"
    bad = [
        ("reading", {**README_READING, "entered": -1}, Reading),
        ("reading", {**README_READING, "seq": "42"}, Reading),
        ("reading-batch", {"readings": []}, ReadingBatch),
        ("alert", {**alert, "kind": "Crowding!"}, Alert),
        ("alert", {**alert, "extra": 1}, Alert),
        ("alert", {k: v for k, v in alert.items() if k != "value"}, Alert),  # null, never absent
    ]
    for name, payload, model in bad:
        with pytest.raises(ValidationError):
            schema_file(name, 1).validate(payload)
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(payload, model)
