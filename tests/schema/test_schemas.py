"""The published JSON Schemas match the models, and every record the worker makes fits them."""

from streams.commands.schemas import default_dir, schema_files
from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.edge.simulator import Simulator
from streams.schema.payloads import Alert, Reading, ZoneState
from streams.zone.processor import ZoneProcessor

SITE = load_site(bundled_site())


def test_committed_schema_files_are_those_of_the_models():
    for name, text in schema_files().items():
        path = default_dir() / name
        assert path.exists(), f"run `crowdsafe schemas`: {name} is missing"
        assert path.read_text() == text, f"run `crowdsafe schemas`: {name} is out of date"


def test_every_zone_state_and_alert_of_a_surge_and_a_blind_camera_fits_its_schema():
    kinds = set()
    for scenario in ("surge", "blind-camera"):
        sim = Simulator(SITE, scenario, start_ms=1_764_000_000_000)
        p, states = ZoneProcessor(SITE), {}
        for ts, rs in sim.ticks():
            if ts - sim.start_ms > sim.length_s * 1000:
                break
            for r in rs:
                out = p.apply(r["zone_id"], states.get(r["zone_id"]), [Reading.model_validate(r)])
                states[r["zone_id"]] = out.state
                for zone_state in out.zone_states:
                    ZoneState.model_validate(zone_state)
                for alert in out.alerts:
                    kinds.add(Alert.model_validate(alert).kind)
    assert kinds == {"density", "forecast", "source-offline"}  # anomaly: still warming up
