"""Per-zone processing: readings in, zone state and alert transitions out.

Plain Python over the site model and a typed state per zone (:class:`streams.zone.state.ZoneState`),
so it runs inside the Faust agent (one table write per zone per batch), in tests and in benchmarks
alike. Detectors are configured from the site on every batch, never from stored state. Readings are
recorded one at a time in order; the zone is then judged (its record, detectors and alarms) once per
event time, after all the readings of that time: the zone at t is one observation, however many
sources report it. Results do not depend on how the stream was batched, unless a batch ends between
readings of one event time (that time is then judged again in the next batch; the forecaster
carries the inflow of such readings into its next interval rather than dropping it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from detectors.alerting import Alarm, Episode, Transition
from detectors.anomaly import SeasonalAnomalyDetector
from detectors.density import LevelEstimate, density, fuse_levels, integrate_gates
from detectors.forecast import DensityForecaster, Forecast
from detectors.los import level_of_service
from detectors.source_health import (
    beyond_since,
    ewma,
    fuse_log,
    is_stuck,
    log_ratio,
    others_moved,
    worst_only,
)
from streams.calendar import SiteCalendar
from streams.config.site import Site, Zone
from streams.schema import payloads  # payloads.ZoneState: the published record, not the state
from streams.schema.payloads import SCHEMA_VERSION, FaultySource, Reading, SourceStatus
from streams.sources import KINDS as SOURCE_KINDS
from streams.zone import alerts
from streams.zone.alerts import AlertKind, SourceFault, ZoneContext
from streams.zone.clock import EventTimePolicy
from streams.zone.state import AnomalyState, EpisodeState, ForecastState, SourceState, ZoneState

UNKNOWN_SOURCE_TTL_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reading the event-time policy refuses: ``code`` is ``late`` or ``future``."""

    reading: Reading
    reason: str
    code: str


@dataclass(slots=True)
class Outcome:
    """What one batch of readings did to one zone."""

    state: ZoneState
    # One zone state per distinct event time: the state after the last reading stamped then
    # (one per tick for live sources, one per row for a replayed series).
    zone_states: list[payloads.ZoneState] = field(default_factory=list)
    alerts: list[payloads.Alert] = field(default_factory=list)
    applied: list[Reading] = field(default_factory=list)  # duplicates left out
    rejected: list[Rejection] = field(default_factory=list)  # late, or from the future
    seq_resets: int = 0  # readings accepted although their seq went back (see _record)
    duplicates: int = 0

    @property
    def zone_state(self) -> payloads.ZoneState | None:
        """The zone's state after the whole batch."""
        return self.zone_states[-1] if self.zone_states else None


@dataclass(slots=True)
class _Moment:
    """The readings of one zone applied at one judged event time, not judged yet."""

    t: int
    # The gates' net inflow of all of them: the forecaster learns inflow only when its clock
    # moves on (persons per elapsed minute), so a second update at ``t`` would drop its share.
    inflow: float | None = None

    def add(self, inflow: float | None) -> None:
        if inflow is not None:
            self.inflow = inflow if self.inflow is None else self.inflow + inflow


@dataclass(slots=True)
class _Judges:
    """A zone's detectors and alarm episodes, decoded once per batch."""

    anomaly: SeasonalAnomalyDetector
    forecaster: DensityForecaster
    episodes: dict[str, Episode]


class ZoneProcessor:
    """Applies readings to zone state using the site's zones, sources and thresholds."""

    def __init__(
        self,
        site: Site,
        kinds: Iterable[AlertKind] | None = None,
        clock: EventTimePolicy | None = None,
    ) -> None:
        self.site = site
        self.clock = clock or EventTimePolicy()
        # The alert policy: every registered kind (streams/zone/alerts/), unless given.
        self.kinds = list(kinds) if kinds is not None else list(alerts.registry().values())
        alerts.check_site(site, self.kinds)
        self._alarms: dict[str, list[tuple[AlertKind, Alarm]]] = {
            z.id: [(k, k.alarm(site, z)) for k in self.kinds] for z in site.zones
        }
        self._tz = ZoneInfo(site.site.timezone)
        self.calendar = SiteCalendar(site.calendar, self._tz)  # holidays, events: streams/calendar
        self._context = {
            z.id: ZoneContext(z, frozenset(s.id for s in site.sources_by_zone[z.id]))
            for z in site.zones
        }
        # Stuck / disagreeing sources are judged here, where their state is, with the
        # source-fault kind's settings; the kind only counts them in the published state.
        self._health = {z.id: SourceFault().health(site, z) for z in site.zones}
        # Looked up for every reading and every source of its zone: computed once here (the
        # site's models are frozen), not per call.
        self._thresholds = {z.id: site.thresholds(z) for z in site.zones}
        self._default_stale_ms = site.defaults.stale_after_s * 1000
        self._stale = {
            s.id: s.stale_after_s * 1000 for s in site.sources if s.stale_after_s is not None
        }
        self._weights = {s.id: s.weight for s in site.sources}
        self._skews = {
            s.id: int(s.max_clock_skew_s * 1000)
            for s in site.sources
            if s.max_clock_skew_s is not None
        }

    def apply(
        self,
        zone_id: str,
        state: ZoneState | None,
        readings: list[Reading],
        arrived_ms: int | None = None,
    ) -> Outcome:
        """Apply ``readings`` to ``state`` (updated in place; None: a zone not seen before).
        ``arrived_ms``: wall-clock time they arrived, for :meth:`sweep`."""
        zone = self.site.zone(zone_id)
        state = state if state is not None else ZoneState()
        out = Outcome(state=state)
        # Detector state is decoded once per batch and written back once: not once per reading.
        judges = self._judges(zone, state)
        moment: _Moment | None = None  # the readings applied at one judged time, not judged yet
        for r in sorted(readings, key=lambda r: (r.ts, r.source_id, r.seq)):
            # Sorted by event time, so the judged time never goes back: a reading judged later
            # closes the moment before it changes the state.
            if moment is not None and self._judged_at(state, r.ts, arrived_ms) != moment.t:
                self._judge(zone, state, moment, judges, out)
                moment = None
            if not self._take(state, r, arrived_ms, out):
                continue
            # Judged at the watermark, but never ahead of the wall clock nor before the last
            # judgement: a late reading does not take the zone back in time.
            t = state.judged_ts = self.clock.judged_at(state.ts, arrived_ms, state.judged_ts)
            if moment is None:
                moment = _Moment(t)
            moment.add(_net_inflow(r))
        if moment is not None:
            self._judge(zone, state, moment, judges, out)
        if arrived_ms is not None and out.zone_states:
            state.arrived_ms = arrived_ms
        state.anomaly = AnomalyState.of(judges.anomaly.to_state())
        state.forecast = ForecastState.of(judges.forecaster.to_state())
        state.episodes = {k: EpisodeState.of(ep) for k, ep in judges.episodes.items()}
        return out

    def _take(self, state: ZoneState, r: Reading, arrived_ms: int | None, out: Outcome) -> bool:
        """Record ``r`` in the zone's state; False when it is rejected or a duplicate."""
        watermark = state.ts if state.sources else None
        verdict = self.clock.verdict(r.ts, watermark, arrived_ms, self._skew_ms(r.source_id))
        if verdict is not None:
            out.rejected.append(self._reject(state, r, verdict, arrived_ms))
            return False
        recorded = self._record(state, r)
        if recorded is None:
            out.duplicates += 1
            return False
        out.seq_resets += recorded
        out.applied.append(r)
        return True

    def _judged_at(self, state: ZoneState, ts: int, arrived_ms: int | None) -> int:
        """The time the zone would be judged at were a reading at ``ts`` applied now."""
        return self.clock.judged_at(max(state.ts, ts), arrived_ms, state.judged_ts)

    def _judge(
        self, zone: Zone, state: ZoneState, moment: _Moment, judges: _Judges, out: Outcome
    ) -> None:
        """The zone's record, detectors and alarms at ``moment.t``, once for all the readings
        applied at that time: fed once per reading, the detectors would count one observation
        (the zone at t) several times, the first ones from part of its readings."""
        t = moment.t
        snapshot = self._snapshot(zone, state, t)
        day = self.calendar.day(t, zone.id)
        score = judges.anomaly.update(t, snapshot.occupancy, day)
        forecast = judges.forecaster.update(t, snapshot.occupancy, moment.inflow)
        _forecast_fields(snapshot, score, forecast, snapshot.occupancy is None)
        snapshot.anomaly_stage = judges.anomaly.stage
        snapshot.calendar = day.label or None
        out.alerts.extend(self._alerts(zone, judges.episodes, snapshot))
        out.zone_states.append(snapshot)  # moments of a batch have distinct times: one each

    def sweep(
        self, zone_id: str, state: ZoneState | None, now_ms: int, since_ms: int = 0
    ) -> Outcome:
        """Check a zone none of whose sources has said anything for a while (wall clock).

        Staleness is otherwise judged on event time when a reading arrives, so a zone whose
        every source dies without an outage reading would never be re-judged. The zone is
        judged at the event time it would have reached (its newest reading plus the silence);
        only the source-offline alarm is fed, and only a transition is published. Silence is
        counted from ``since_ms`` at the earliest (the worker's start): a restarted worker first
        catches up with its backlog instead of calling every zone blind.
        """
        out = Outcome(state=state if state is not None else ZoneState())
        if state is None or state.arrived_ms is None:
            return out
        silence_ms = now_ms - max(state.arrived_ms, since_ms)
        # Blind only once every source has been quiet for longer than its own interval.
        longest = max((self._stale_ms(sid) for sid in state.sources), default=0.0)
        if silence_ms <= max(longest, self.site.defaults.stale_after_s * 1000):
            return out
        zone = self.site.zone(zone_id)
        # Every source is stale by now, so the zone is blind: of the alarms only source-offline
        # is fed, through the same path as for readings.
        snapshot = self._snapshot(zone, state, max(state.ts + silence_ms, state.judged_ts))
        _forecast_fields(snapshot, None, Forecast(), blind=True)
        episodes = {k: ep.episode() for k, ep in state.episodes.items()}
        out.alerts = self._alerts(zone, episodes, snapshot)
        if out.alerts:
            state.judged_ts = snapshot.ts
            state.episodes = {k: EpisodeState.of(ep) for k, ep in episodes.items()}
            out.zone_states.append(snapshot)
        return out

    def _judges(self, zone: Zone, state: ZoneState) -> _Judges:
        """The zone's detectors and alarm episodes, resumed from its state for one batch."""
        anomaly, forecaster = self._detectors(zone, state)
        return _Judges(anomaly, forecaster, {k: ep.episode() for k, ep in state.episodes.items()})

    def _detectors(
        self, zone: Zone, state: ZoneState
    ) -> tuple[SeasonalAnomalyDetector, DensityForecaster]:
        """The zone's detectors, configured from the site (time zone, area, thresholds) and
        resuming what they learned: an edited site file takes effect on the next batch."""
        if state.anomaly is not None:
            anomaly = SeasonalAnomalyDetector.from_state(state.anomaly.to_dict(), tz=self._tz)
        else:
            anomaly = SeasonalAnomalyDetector(tz=self._tz)
        t = self.site.thresholds(zone)
        forecaster = DensityForecaster(zone.area_m2, t.warning, t.critical)
        if state.forecast is not None:
            try:
                forecaster = DensityForecaster.from_state(
                    state.forecast.to_dict(), zone.area_m2, t.warning, t.critical
                )
            except ValueError:
                # A trend of an older forecaster version (stored before an upgrade): start a
                # new one, which forecasts again after a few minutes of readings.
                state.forecast = None
        return anomaly, forecaster

    def _record(self, state: ZoneState, r: Reading) -> int | None:
        """Update the source's state; None for a duplicate (re-delivered) reading, else 1 when
        the source's seq went back (a restarted counter) and 0 otherwise.

        A re-delivery repeats a reading already applied: its seq *and* its event time are at or
        below the source's last. A seq at or below the last with a newer event time is a source
        that restarted its counter (or one a forged huge seq pushed up): accepted and counted,
        so one bad seq can never mute a source for good.
        """
        src = state.sources.get(r.source_id)
        reset = 0
        if src is not None and r.seq <= src.seq:
            if r.ts <= src.ts:
                return None
            src.resets += 1
            reset = 1
        if src is None:
            src = state.sources[r.source_id] = SourceState(r.kind, r.seq, r.ts)
        src.seq, src.ts, src.status, src.reason = r.seq, max(r.ts, src.ts), r.status, r.reason
        state.ts = max(r.ts, state.ts)
        if r.status != "ok":
            return reset
        kind = SOURCE_KINDS[r.kind]
        flow = kind.flow(r)
        if flow is not None:
            state.gate_occupancy = integrate_gates(state.gate_occupancy, *flow)
            src.flow_ts = r.ts
            src.net_flow += flow[0] - flow[1]
        level = kind.level(r, self.site.source_by_id.get(r.source_id))
        if level is not None and (src.estimate_ts is None or r.ts >= src.estimate_ts):
            # Stamped with its own time: a source that once sent a count and now only sends
            # crossings must not pin the zone to that old count; an older count (out of order)
            # never replaces a newer one.
            self._watch_health(state, r, src, level)
            src.estimate, src.estimate_ts = level, r.ts
        self._forget_unknown_sources(state, r.ts)
        return reset

    def _watch_health(self, state: ZoneState, r: Reading, src: SourceState, level: float) -> None:
        """A level source's health numbers (detectors/source_health.py), before ``level``
        becomes its estimate: when its value changed, and its smoothed ratio to the others."""
        if r.zone_id not in self._health:
            return
        s = self._health[r.zone_id]
        others = fuse_log(self._other_levels(state, r.source_id, state.ts), s.floor_people)
        if src.held_since is None or level != src.estimate:
            src.held_since, src.held_level = r.ts, others
            src.held_net = sum(o.net_flow for o in state.sources.values())
        if others is None:  # nobody to compare with: no claim of a persistent disagreement
            src.disagree_since = None
            return
        x = log_ratio(level, others, s.floor_people)
        src.ratio = ewma(src.ratio, src.ratio_ts, x, r.ts, s.half_life_s)
        src.ratio_ts = r.ts
        src.disagree_since = beyond_since(src.disagree_since, src.ratio, r.ts, s.disagree_factor)

    def _other_levels(self, state: ZoneState, sid: str, ts: int) -> list[tuple[float, float]]:
        """``(estimate, weight)`` of the zone's fresh level sources at ``ts`` except ``sid``."""
        out = []
        for oid, o in state.sources.items():
            stale_ms = self._stale_ms(oid)
            if oid == sid or o.status != "ok" or o.estimate is None or o.estimate_ts is None:
                continue
            if ts - o.ts <= stale_ms and ts - o.estimate_ts <= stale_ms:
                out.append((o.estimate, self._weight(oid)))
        return out

    def _weight(self, sid: str) -> float:
        return self._weights.get(sid, 1.0)

    def _faults(
        self, zone: Zone, state: ZoneState, levels: list[LevelEstimate], ts: int
    ) -> list[FaultySource]:
        """The zone's fresh level sources judged stuck or disagreeing at ``ts``."""
        s = self._health[zone.id]
        net = sum(src.net_flow for src in state.sources.values())
        stuck: list[FaultySource] = []
        deviation: dict[str, float] = {}
        for e in levels:
            src = state.sources[e.source_id]
            others = [(o.occupancy, o.weight) for o in levels if o is not e]
            now = fuse_log(others, s.floor_people)
            moved = others_moved(src.held_level, now, src.held_net, net, s.move_people)
            if src.held_since is not None and is_stuck(src.held_since, e.occupancy, ts, moved, s):
                value = round(e.occupancy, 1)
                stuck.append(
                    FaultySource(
                        source_id=e.source_id, fault="stuck", since=src.held_since, value=value
                    )
                )
            elif others and src.ratio is not None and src.disagree_since is not None:
                deviation[e.source_id] = abs(src.ratio)
        if stuck and len(levels) - len(stuck) < 3:
            deviation = {}  # the stuck source explains it: too few left to tell who else is wrong
        disagreeing = []
        for sid in worst_only(deviation, len(levels) - len(stuck)):
            src = state.sources[sid]
            if src.disagree_since is None or ts - src.disagree_since < s.min_duration_s * 1000:
                continue  # the worst, but not for long enough yet
            ratio = round(math.exp(src.ratio or 0.0), 2)
            disagreeing.append(
                FaultySource(
                    source_id=sid, fault="disagreeing", since=src.disagree_since, value=ratio
                )
            )
        return sorted(stuck + disagreeing, key=lambda f: f.source_id)

    def _skew_ms(self, source_id: str) -> int | None:
        return self._skews.get(source_id)

    def _stale_ms(self, source_id: str) -> float:
        """The source's expected interval (ms), or the site's."""
        return self._stale.get(source_id, self._default_stale_ms)

    def _reject(self, state: ZoneState, r: Reading, verdict: str, now_ms: int | None) -> Rejection:
        """The dead-letter reason; a source from the future is flagged as not reporting."""
        if verdict == "late":
            behind = self.clock.watermark(state.ts, now_ms) - r.ts
            return Rejection(
                r,
                f"late: ts {r.ts} is {behind / 1000:.0f} s behind zone '{r.zone_id}' "
                f"(allowed lateness {self.clock.allowed_lateness_ms / 1000:.0f} s)",
                "late",
            )
        ahead = (r.ts - now_ms) / 1000 if now_ms else 0.0
        src = state.sources.get(r.source_id)
        if src is None:
            src = state.sources[r.source_id] = SourceState(r.kind, -1, 0)
        # Its readings are refused, so it says nothing usable: listed offline, with why, until
        # a reading within the bound arrives.
        src.status, src.reason = "offline", f"clock {ahead:.0f} s ahead of the wall clock"
        skew = self._skew_ms(r.source_id) or self.clock.max_skew_ms
        return Rejection(
            r,
            f"future: ts {r.ts} is {ahead:.0f} s ahead of the wall clock "
            f"(source '{r.source_id}' may be {skew / 1000:.0f} s ahead)",
            "future",
        )

    def _forget_unknown_sources(self, state: ZoneState, ts: int) -> None:
        """Sources not in the site file (a replay, a typo) are dropped after a day of silence,
        so a stream of odd source ids cannot grow the zone's table entry without bound."""
        limit = ts - UNKNOWN_SOURCE_TTL_MS
        for sid in [sid for sid, src in state.sources.items() if src.ts < limit]:
            if sid not in self.site.source_by_id:
                del state.sources[sid]

    def _snapshot(self, zone: Zone, state: ZoneState, ts: int) -> payloads.ZoneState:
        """The zone's published record at ``ts``; its forecast fields are null until
        :func:`_forecast_fields` fills them."""
        fresh, stale, offline, levels = [], [], [], []
        gate_fresh = False
        stale_of, default_stale = self._stale.get, self._default_stale_ms
        for sid, src in sorted(state.sources.items()):
            stale_ms = stale_of(sid, default_stale)  # the source's expected interval, or the site's
            if src.status != "ok":
                offline.append(sid)
            elif ts - src.ts > stale_ms:
                stale.append(sid)
            else:
                fresh.append(sid)
                if src.estimate is not None and ts - src.estimate_ts <= stale_ms:
                    levels.append(LevelEstimate(sid, src.estimate, self._weights.get(sid, 1.0)))
                if src.flow_ts is not None and ts - src.flow_ts <= stale_ms:
                    gate_fresh = True
        occupancy = fuse_levels(levels)
        faulty = self._faults(zone, state, levels, ts) if len(levels) else []
        if occupancy is not None:
            state.gate_occupancy = occupancy  # re-anchor gates to what the cameras see
        elif gate_fresh:
            occupancy = state.gate_occupancy
        t = self._thresholds[zone.id]
        rho = None if occupancy is None else density(occupancy, zone.area_m2)
        return payloads.ZoneState(
            v=SCHEMA_VERSION,
            zone_id=zone.id,
            name=zone.name,
            kind=zone.kind,
            ts=ts,
            occupancy=None if occupancy is None else round(occupancy, 1),
            area_m2=zone.area_m2,
            density=None if rho is None else round(rho, 4),
            los=None if rho is None else level_of_service(rho, zone.kind),
            warning=t.warning,
            critical=t.critical,
            sources=SourceStatus(fresh=fresh, stale=stale, offline=offline, faulty=faulty),
            anomaly_score=None,
            minutes_to_warning=None,
            minutes_to_critical=None,
            minutes_to_critical_low=None,
            minutes_to_critical_high=None,
        )

    def _alerts(
        self, zone: Zone, episodes: dict[str, Episode], snap: payloads.ZoneState
    ) -> list[payloads.Alert]:
        out = []
        ctx = self._context[zone.id]
        for kind, alarm in self._alarms[zone.id]:
            if kind.skipped(snap, ctx):
                continue  # nothing known: nothing raises or clears either
            ep = episodes.get(kind.name)
            if ep is None:  # not setdefault: that would build an Episode per kind per reading
                ep = episodes[kind.name] = Episode()
            transition = alarm.update(ep, snap.ts, kind.value(snap, ctx))
            if transition:
                out.append(alert_record(zone, kind, transition, snap))
        return out


def _net_inflow(r: Reading) -> float | None:
    flow = SOURCE_KINDS[r.kind].flow(r) if r.status == "ok" else None
    return None if flow is None else float(flow[0] - flow[1])


def _forecast_fields(
    snap: payloads.ZoneState, score: float | None, f: Forecast, blind: bool
) -> None:
    """Fill ``snap``'s anomaly score and minutes to warning/critical (in place: the record is
    not published yet, and a copy per reading would cost more than the fields)."""

    def minutes(x: float | None) -> float | None:
        # 0.0 means "already there": a crossing a few seconds away is shown as 0.1 minutes.
        return None if x is None or blind else round(x, 1) or (0.1 if x > 0 else 0.0)

    snap.anomaly_score = None if score is None else round(score, 4)
    snap.minutes_to_warning = minutes(f.minutes_to_warning)
    snap.minutes_to_critical = minutes(f.minutes_to_critical)
    snap.minutes_to_critical_low = minutes(f.critical_low)
    snap.minutes_to_critical_high = minutes(f.critical_high)


def _with_calendar(message: str, snap: payloads.ZoneState) -> str:
    """An alert says when a holiday or planned event is in force: it explains the crowd."""
    return f"{message} [{snap.calendar}]" if snap.calendar else message


def alert_record(
    zone: Zone, kind: AlertKind, t: Transition, snap: payloads.ZoneState
) -> payloads.Alert:
    """The ``crowd.alerts`` payload for one transition."""
    return payloads.Alert(
        v=SCHEMA_VERSION,
        alert_id=f"{zone.id}/{kind.name}/{t.started_at}",
        zone_id=zone.id,
        zone_name=zone.name,
        kind=kind.name,
        severity=t.severity,
        state=t.state,
        value=None if t.value != t.value else round(t.value, 4),  # NaN -> null
        threshold=round(t.threshold, 4),
        started_at=t.started_at,
        ts=t.ts,
        message=_with_calendar(kind.message(zone, t, snap), snap),
    )
