"""The published JSON Schemas match the models, and every record the worker makes fits them."""

import msgspec

from streams.commands.schemas import default_dir, schema_files
from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.payloads import Alert, Reading, ZoneState
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


def test_every_zone_state_and_alert_of_a_surge_and_a_blind_camera_fits_its_schema():
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
                for alert in out.alerts:
                    kinds.add(published(alert, Alert).kind)
    assert kinds == {"density", "forecast", "source-offline"}  # anomaly: still warming up
