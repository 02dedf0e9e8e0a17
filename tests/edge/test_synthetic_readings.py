"""Synthetic readings: one valid message per zone per tick, that the processor applies."""

from __future__ import annotations

import msgspec

from streams.config.synthetic import synthetic_site
from streams.edge.synthetic import SyntheticReadings
from streams.ops.partitioning import partition_of
from streams.schema.intake import parse_message
from streams.zone.processor import ZoneProcessor

T0 = 1_764_000_000_000


def test_every_zone_gets_one_message_with_a_reading_of_each_source():
    site = synthetic_site(300, seed=2)
    feed = SyntheticReadings(site, seed=2)
    messages = feed.tick(T0)

    assert [k.decode() for k, _ in messages] == [z.id for z in site.zones]
    processor, states, applied, alerting = ZoneProcessor(site), {}, 0, 0
    for tick in (messages, feed.tick(T0 + 5000)):
        for key, value in tick:
            readings = parse_message(key, value, site)  # valid, or it raises Rejected
            zone = key.decode()
            assert {r.source_id for r in readings} == {s.id for s in site.sources_by_zone[zone]}
            outcome = processor.apply(zone, states.get(zone), readings, T0 + 5000)
            states[zone] = outcome.state
            applied += len(outcome.applied)
            alerting += any(a.kind == "density" for a in outcome.alerts)
    assert applied == 2 * feed.readings_per_tick == 2 * len(site.sources)
    assert 0 < alerting < 10  # a few zones over their warning density, most well below


def test_one_seed_one_story_and_seq_grows_per_tick():
    site = synthetic_site(20, seed=3)
    a, b = SyntheticReadings(site, seed=3), SyntheticReadings(site, seed=3)
    assert a.tick(T0) == b.tick(T0)
    first, second = a.tick(T0 + 5000), a.tick(T0 + 10_000)
    seq = [msgspec.json.decode(v)["readings"][0]["seq"] for _, v in (first[0], second[0])]
    assert seq[1] == seq[0] + 1
    assert len({partition_of(k, 4) for k, _ in first}) == 4  # keyed by zone: spread out
