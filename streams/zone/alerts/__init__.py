"""Alert kinds, one module each: what value it watches, when it is skipped, its thresholds from
the site file, its message. The zone processor, the silence sweep and ``crowdsafe backtest`` all
take the alert policy from :func:`registry`.

Adding a kind: a module with an :class:`AlertKind` subclass (and, if it has settings, a
pydantic ``settings_model`` read from the site file's ``[defaults.alerts.<name>]`` and the zone's
``alerts.<name>``), then :func:`register` an instance of it.
"""

from __future__ import annotations

from streams.zone.alerts.anomaly import Anomaly
from streams.zone.alerts.base import (
    AlertKind,
    ZoneContext,
    check_site,
    make_alarm,
    register,
    registered,
    registry,
    unregister,
)
from streams.zone.alerts.density import Density
from streams.zone.alerts.forecast import Forecast
from streams.zone.alerts.source_fault import SourceFault
from streams.zone.alerts.source_offline import SourceOffline

__all__ = [
    "AlertKind",
    "SourceFault",
    "ZoneContext",
    "check_site",
    "make_alarm",
    "register",
    "registered",
    "registry",
    "unregister",
]

# The built-in kinds, in evaluation order (registering them is the module's only import-time act).
for _kind in (Density(), Anomaly(), Forecast(), SourceOffline(), SourceFault()):
    register(_kind)
