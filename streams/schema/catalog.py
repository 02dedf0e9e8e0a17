"""Every published payload by schema name and version: ``crowdsafe schemas`` writes
``deploy/schemas/<name>.v<version>.json`` from these models."""

from __future__ import annotations

import msgspec

from streams.schema.incident import Ack, AuditRecord, Dispatch, IncidentAlert, Silence
from streams.schema.payloads import Alert, DeadLetter, Reading, ReadingBatch, ZoneState

SCHEMAS: dict[tuple[str, int], type[msgspec.Struct]] = {
    ("reading", 1): Reading,
    ("reading-batch", 1): ReadingBatch,
    ("zone-state", 1): ZoneState,
    ("alert", 1): Alert,  # deprecated: crowd.alerts carries version 2 (incidents)
    ("alert", 2): IncidentAlert,
    ("ack", 1): Ack,
    ("silence", 1): Silence,
    ("audit", 1): AuditRecord,
    ("dispatch", 1): Dispatch,
    ("deadletter", 1): DeadLetter,
}


def latest(name: str) -> int:
    """The newest version of schema ``name``.

    >>> latest("alert"), latest("reading")
    (2, 1)
    """
    return max(v for (n, v) in SCHEMAS if n == name)
