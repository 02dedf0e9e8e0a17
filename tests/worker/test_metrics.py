"""Worker metrics on a fresh registry: names, units, labels and what a zone state sets."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry

from streams.schema.payloads import SourceStatus, ZoneState
from streams.worker.metrics import OTHER_ZONES, WorkerMetrics, zones_with_series


def zone_state(zone: str = "ticket-hall", occupancy: float | None = 2000, **sources) -> ZoneState:
    blind = occupancy is None
    return ZoneState(
        v=1,
        zone_id=zone,
        name=zone,
        kind="queuing",
        ts=1_764_000_000_000,
        occupancy=occupancy,
        area_m2=2500.0,
        density=None if blind else occupancy / 2500,
        los=None if blind else "A",
        warning=4.0,
        critical=4.7,
        sources=SourceStatus(**{"fresh": [], "stale": [], "offline": [], **sources}),
        anomaly_score=None,
        minutes_to_warning=None,
        minutes_to_critical=None,
        minutes_to_critical_low=None,
        minutes_to_critical_high=None,
    )


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics(CollectorRegistry())


def value(m: WorkerMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_each_instance_has_its_own_registry():
    a, b = WorkerMetrics(), WorkerMetrics()
    a.readings.labels("camera").inc()
    assert b.registry.get_sample_value("crowdsafe_readings_total", {"kind": "camera"}) is None


def test_zone_state_sets_density_thresholds_and_unavailable_sources(metrics):
    metrics.observe_zone(zone_state(stale=["cam-a"], offline=["cam-b", "gate-c"]))

    assert value(metrics, "crowdsafe_zone_occupancy_persons", zone="ticket-hall") == 2000
    density = "crowdsafe_zone_density_persons_per_square_metre"
    assert value(metrics, density, zone="ticket-hall") == pytest.approx(0.8)
    assert (
        value(
            metrics, "crowdsafe_zone_density_warning_persons_per_square_metre", zone="ticket-hall"
        )
        == 4.0
    )
    assert (
        value(
            metrics, "crowdsafe_zone_density_critical_persons_per_square_metre", zone="ticket-hall"
        )
        == 4.7
    )
    assert value(metrics, "crowdsafe_zone_sources_unavailable", zone="ticket-hall") == 3
    assert (
        value(metrics, "crowdsafe_zone_last_update_timestamp_seconds", zone="ticket-hall") > 1.7e9
    )


def test_blind_zone_stops_exporting_its_last_density(metrics):
    metrics.observe_zone(zone_state(occupancy=2000))
    metrics.observe_zone(zone_state(occupancy=None, offline=["cam-ticket-hall"]))

    assert (
        value(metrics, "crowdsafe_zone_density_persons_per_square_metre", zone="ticket-hall")
        is None
    )
    assert value(metrics, "crowdsafe_zone_occupancy_persons", zone="ticket-hall") is None
    assert value(metrics, "crowdsafe_zone_sources_unavailable", zone="ticket-hall") == 1
    metrics.observe_zone(zone_state(occupancy=None))  # still blind: no KeyError


def exercise(m: WorkerMetrics) -> None:
    """One of each: labelled metrics have no samples until a label set is used."""
    m.readings.labels("camera").inc()
    m.rejected.labels("not JSON").inc()
    m.duplicates.inc()
    m.alerts.labels("density", "warning", "raised").inc()
    m.lag.observe(0.3)
    m.batch.observe(20)
    m.observe_zone(zone_state())


def test_names_follow_prometheus_conventions(metrics):
    exercise(metrics)
    families = list(metrics.registry.collect())

    assert len(families) >= 12
    # the client library's own: the process (memory, CPU, files) and the Python version
    standard = {f.name for f in families if f.name.startswith(("process_", "python_"))}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "python_info"} <= standard
    for family in (f for f in families if f.name not in standard):
        assert re.fullmatch(r"crowdsafe_[a-z_]+", family.name), family.name
        assert family.documentation, family.name
        if family.type == "counter":  # the client appends _total to the sample names
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        else:  # a unit, or what is being counted, ends the name
            assert re.search(
                r"_(seconds|messages|persons|metre|unavailable|score|zones|ratio)$", family.name
            )


def test_labels_stay_low_cardinality(metrics):
    exercise(metrics)
    allowed = {"kind", "level", "reason", "severity", "state", "zone"}
    labelled = set()
    for family in metrics.registry.collect():
        if family.name == "python_info":  # one constant series: the interpreter's version
            continue
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= allowed, (family.name, sample.labels)
            labelled |= set(sample.labels)
    assert labelled >= allowed  # every label was actually seen, so the check above meant something


def test_anomaly_score_and_time_to_critical_per_zone_and_none_when_unknown(metrics):
    state = zone_state()
    state.anomaly_score, state.minutes_to_critical = 0.42, 7.5
    metrics.observe_zone(state)
    assert value(metrics, "crowdsafe_zone_anomaly_score", zone="ticket-hall") == 0.42
    assert value(metrics, "crowdsafe_zone_time_to_critical_seconds", zone="ticket-hall") == 450
    metrics.observe_zone(zone_state())  # warming up, not heading there: no series, not stale
    assert value(metrics, "crowdsafe_zone_anomaly_score", zone="ticket-hall") is None
    assert value(metrics, "crowdsafe_zone_time_to_critical_seconds", zone="ticket-hall") is None


def test_sample_names_include_unused_labelled_metrics(metrics):
    names = metrics.sample_names()  # nothing observed yet

    assert "crowdsafe_readings_total" in names
    assert "crowdsafe_event_lag_seconds_bucket" in names
    assert "crowdsafe_zone_density_persons_per_square_metre" in names
    assert "crowdsafe_readings" not in names  # a counter is only ever exported with _total


def zone_labels(m: WorkerMetrics) -> set[str]:
    return {
        s.labels["zone"]
        for family in m.registry.collect()
        for s in family.samples
        if "zone" in s.labels
    }


def test_zone_limit_exports_per_zone_series_of_the_first_zones_only():
    limited = WorkerMetrics(CollectorRegistry(), zone_series=zones_with_series(["a", "b", "c"], 2))
    for zone, occupancy in (("a", 2000), ("b", 11_000), ("c", 12_000)):
        limited.observe_zone(zone_state(zone, occupancy))  # c: 4.8 p/m², over critical

    assert zone_labels(limited) == {"a", "b"}
    # Every zone still counts, by kind and level, in the aggregates.
    assert value(limited, "crowdsafe_zones", kind="queuing", level="ok") == 1
    assert value(limited, "crowdsafe_zones", kind="queuing", level="warning") == 1
    assert value(limited, "crowdsafe_zones", kind="queuing", level="critical") == 1
    assert value(limited, "crowdsafe_zones", kind="queuing", level="unknown") == 0
    ratio = value(limited, "crowdsafe_zones_max_density_critical_ratio", kind="queuing")
    assert ratio == pytest.approx(4.8 / 4.7)


def test_a_zone_beyond_the_limit_counts_its_state_resets_as_other():
    limited = WorkerMetrics(CollectorRegistry(), zone_series=zones_with_series(["a", "b"], 1))
    limited.state_resets.labels(limited.zone_label("b")).inc()
    limited.state_resets.labels(limited.zone_label("a")).inc()
    assert zone_labels(limited) == {"a", OTHER_ZONES}


def test_zones_are_forgotten_from_the_aggregates_when_partitions_move(metrics):
    metrics.observe_zone(zone_state("a"))
    metrics.forget_zones()
    metrics.observe_zone(zone_state("b"))
    assert value(metrics, "crowdsafe_zones", kind="queuing", level="ok") == 1


def test_a_zone_that_goes_blind_moves_to_unknown(metrics):
    metrics.observe_zone(zone_state(occupancy=2000))
    metrics.observe_zone(zone_state(occupancy=None, offline=["cam-ticket-hall"]))
    assert value(metrics, "crowdsafe_zones", kind="queuing", level="ok") == 0
    assert value(metrics, "crowdsafe_zones", kind="queuing", level="unknown") == 1


def test_a_scrape_of_some_names_neither_tallies_the_zones_nor_shows_them(metrics, monkeypatch):
    from streams.worker import metrics as module

    for i in range(50):
        metrics.observe_zone(zone_state(f"z{i}", occupancy=1000 + i))
    metrics.readings.labels(kind="camera").inc(7)
    tallies = []
    real = module.Tally
    monkeypatch.setattr(module, "Tally", lambda *a: tallies.append(1) or real(*a))

    some = module.exposition(metrics.registry, ["crowdsafe_readings_total"]).decode()
    assert 'crowdsafe_readings_total{kind="camera"} 7.0' in some
    assert "crowdsafe_zones" not in some and "crowdsafe_zone_density" not in some
    assert tallies == []  # the per-kind aggregate over every zone was not computed
    whole = module.exposition(metrics.registry).decode()
    assert 'crowdsafe_zones{kind="queuing",level="ok"} 50.0' in whole and tallies == [1]
