"""Source kinds: one module each; the schema, the site file and the simulator agree with them."""

from __future__ import annotations

from typing import get_args

import numpy as np

from streams.config.paths import bundled_site
from streams.config.site import Source, load_site
from streams.edge.simulator import Simulator
from streams.schema import payloads
from streams.sources import KINDS
from streams.sources.base import SimStep

SITE = load_site(bundled_site())


def test_schema_and_site_name_exactly_the_registered_kinds():
    assert set(get_args(payloads.SourceKind)) == set(KINDS)
    assert set(get_args(Source.model_fields["kind"].annotation)) == set(KINDS)


def test_levels_and_flows_by_kind():
    class R:
        zone_id, count, entered, exited = "z", 30, None, None

    cam = Source(id="c", kind="camera", zones=["z"], coverage=0.6)
    wifi = Source(id="w", kind="sensor", zones=["z"], scale=1.5)
    assert KINDS["camera"].level(R, cam) == 50.0
    assert KINDS["sensor"].level(R, wifi) == 45.0
    assert KINDS["camera"].level(R, None) == 30.0  # not in the site file: face value
    assert KINDS["gate"].flow(R) is None

    class Crossing:
        zone_id, count, entered, exited = "z", None, 12, None

    assert KINDS["gate"].flow(Crossing) == (12, 0)
    assert KINDS["gate"].level(Crossing, None) is None


def test_the_simulator_emits_each_kind_through_its_module():
    sim = Simulator(SITE, "normal", start_ms=1_764_000_000_000, seed=1)
    ticks = sim.ticks()
    first = next(ticks)[1]
    by_kind = {SITE.source(r["source_id"]).kind for r in first}
    assert by_kind == set(KINDS)  # tick 0: every kind reports
    second = next(ticks)[1]
    assert "sensor" not in {SITE.source(r["source_id"]).kind for r in second}  # every 6th tick
    for r in first:
        kind = SITE.source(r["source_id"]).kind
        fields = {"count"} if kind != "gate" else {"entered", "exited"}
        assert fields <= set(r) and all(r[f] >= 0 for f in fields)


def test_gate_simulation_carries_the_net_change():
    gate = Source(id="g", kind="gate", zones=["z"])
    rng = np.random.default_rng(0)
    r = KINDS["gate"].simulate(gate, "z", SimStep(now=1000.0, before=900.0, rng=rng, tick_s=5.0))
    assert r["entered"] - r["exited"] == 100
