"""The simulator under one event-time policy: live readings carry wall-clock times and the
scenario's story is compressed instead of the clock."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from streams.commands.simulate import _story_start
from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.edge.simulator import TICK_S, Simulator

SITE = load_site(bundled_site())
START = 1_764_000_000_000


def surge_density(sim: Simulator, ticks: int) -> list[float]:
    zone = sim.site.zone("entrance-east")
    out = []
    for _ in zip(range(ticks), sim.ticks(), strict=False):
        out.append(sim._occupancy["entrance-east"] / zone.area_m2)
    return out


def test_compressed_story_keeps_event_time_on_the_clock():
    fast = Simulator(SITE, "surge", START, compress=10)
    times = [ts for _, (ts, _) in zip(range(30), fast.ticks(), strict=False)]
    assert times == [START + int(i * TICK_S * 1000) for i in range(30)]  # 5 s apart, no jumps
    # The surge's ramp (120 s + 480 s of story) is reached after 60 s of event time at 10x.
    critical = SITE.thresholds(SITE.zone("entrance-east")).critical
    fast_d = surge_density(Simulator(SITE, "surge", START, compress=10), 16)
    slow_d = surge_density(Simulator(SITE, "surge", START, compress=1), 16)
    assert max(fast_d) > critical > max(slow_d)


def test_seq_keeps_increasing_across_a_repeating_story():
    sim = Simulator(SITE, "surge", START, compress=20, repeat=True)
    seqs = [r["seq"] for _, (_, rs) in zip(range(80), sim.ticks(), strict=False) for r in rs[:1]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_clock_sets_the_local_hour_the_story_starts_at():
    tz = "Asia/Shanghai"
    story = _story_start(START, time(17, 30), tz)
    local = datetime.fromtimestamp(story / 1000, ZoneInfo(tz))
    assert (local.hour, local.minute) == (17, 30) and story <= START
    assert START - story < 86_400_000
    # The evening peak is busier than the story started at 04:00.
    evening = Simulator(SITE, "normal", START, story_start_ms=story)
    night = Simulator(SITE, "normal", START, story_start_ms=_story_start(START, time(4), tz))
    square = SITE.zone("main-square")
    assert evening.occupancy(square, 0) > 3 * night.occupancy(square, 0)
