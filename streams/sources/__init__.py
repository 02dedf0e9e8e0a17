"""Source kinds, one module each: how a reading of that kind tells the zone's occupancy (a level
seen now, crossings since the last reading) and how the simulator emits one. The zone processor
and the simulator take them from :data:`KINDS`; the reading schema's ``kind`` values and the site
file's source kinds are these names (a test keeps them equal).

Adding a kind: a module with a :class:`SourceKind` subclass, an entry in :data:`KINDS`, and its
name in the ``SourceKind`` literals of ``streams/schema/payloads.py`` and ``streams/config/site.py``.
"""

from __future__ import annotations

from streams.sources.base import SourceKind
from streams.sources.camera import Camera
from streams.sources.gate import Gate
from streams.sources.sensor import Sensor

KINDS: dict[str, SourceKind] = {k.name: k for k in (Camera(), Gate(), Sensor())}

__all__ = ["KINDS", "SourceKind"]
