"""Records for the command centre's tests, built from the payload models (as the worker
publishes them), and the bundled site."""

from __future__ import annotations

import msgspec
import pytest

from streams.config.paths import bundled_site
from streams.config.site import load_site
from streams.schema.incident import IncidentAlert, Member, Silence
from streams.schema.payloads import SourceStatus, ZoneState

SITE = load_site(bundled_site())
T0 = 1_764_000_000_000


def zone_state(zone: str = "entrance-east", ts: int = T0, density: float | None = 2.0) -> dict:
    z = SITE.zone(zone)
    t = SITE.thresholds(z)
    return msgspec.to_builtins(
        ZoneState(
            v=1, zone_id=zone, name=z.name, kind=z.kind, ts=ts,
            occupancy=None if density is None else density * z.area_m2, area_m2=z.area_m2,
            density=density, los=None if density is None else "C", warning=t.warning,
            critical=t.critical, sources=SourceStatus(fresh=["cam"], stale=[], offline=[]),
            anomaly_score=0.1, minutes_to_warning=None, minutes_to_critical=12.5,
            minutes_to_critical_low=None, minutes_to_critical_high=None,
        )
    )  # fmt: skip


def incident(
    zone: str = "entrance-east", seq: int = 1, state: str = "open", severity: str = "warning",
    ts: int = T0, started: int = T0, category: str = "crowd", member_state: str = "raised",
    transition: str = "raised",
) -> dict:  # fmt: skip
    z = SITE.zone(zone)
    member = Member(
        alert_id=f"{zone}/density/{started}", kind="density", severity=severity,
        state=member_state, value=4.2, threshold=4.0, started_at=started, ts=ts, message="m",
    )  # fmt: skip
    return msgspec.to_builtins(
        IncidentAlert(
            v=2, incident_id=f"{zone}/{category}/{started}", seq=seq, zone_id=zone,
            zone_name=z.name, category=category, transition=transition, state=state,
            severity=severity, tier="grid", ts=ts, started_at=started, opened_at=started,
            alert_id=None, members=[member], acknowledged_by=None, acknowledged_at=None,
            resolved_by=None, note=None, blind=False, silenced_by=None, routes=["police"],
            held=None, density=4.2, minutes_to_critical=None, message="msg",
            announced_seq=1, announced_at=started,
        )
    )  # fmt: skip


def silence(sid: str = "s1", ends_at: int = T0 + 3_600_000, action: str = "create") -> dict:
    return msgspec.to_builtins(
        Silence(
            silence_id=sid,
            zone_id="east-plaza",
            by="chen",
            reason="drill",
            ts=T0,
            ends_at=ends_at,
            action=action,
        )  # fmt: skip
    )


@pytest.fixture
def records():
    """The builders: ``records.zone_state(...)``, ``records.incident(...)``,
    ``records.silence(...)``."""

    class R:
        pass

    r = R()
    r.zone_state, r.incident, r.silence, r.site, r.t0 = (
        zone_state, incident, silence, SITE, T0
    )  # fmt: skip
    return r
