"""Event time: one policy for every component (the processor, the silence sweep, replays).

Per zone, the *watermark* is the newest event time accepted. A reading is applied as it arrives
(no reorder buffer that would delay every output) unless it is

* **late**: more than ``allowed_lateness`` behind the zone's watermark (history replayed into a
  live zone, a producer that buffered too long): dead-lettered as late;
* **from the future**: more than the source's ``max_skew`` ahead of the wall clock (a camera
  with a wrong clock): dead-lettered, and the source is flagged as not reporting usable data.

A zone is judged (staleness, density, alarms) at ``min(watermark, wall clock)``, never earlier
than it was judged before: published zone-state and alert times never go backwards, and a
source running ahead (within the skew bound) can neither make the honest ones look stale nor
the zone blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["late", "future"]


@dataclass(frozen=True, slots=True)
class EventTimePolicy:
    """Allowed lateness behind the watermark and clock skew ahead of the wall clock (ms).

    >>> p = EventTimePolicy(allowed_lateness_ms=600_000, max_skew_ms=120_000)
    >>> now = 1_764_000_000_000
    >>> p.verdict(now - 60_000, watermark=now, now_ms=now) is None      # a minute late: fine
    True
    >>> p.verdict(now - 900_000, watermark=now, now_ms=now)             # 15 min late
    'late'
    >>> p.verdict(now + 3_600_000, watermark=now, now_ms=now)           # an hour ahead
    'future'
    >>> p.judged_at(watermark=now + 60_000, now_ms=now, before=0) == now  # ahead: the clock
    True
    """

    allowed_lateness_ms: int = 900_000
    max_skew_ms: int = 300_000

    def verdict(
        self,
        ts: int,
        watermark: int | None,
        now_ms: int | None,
        max_skew_ms: int | None = None,
    ) -> Verdict | None:
        """None to apply the reading at ``ts``, else why not. ``now_ms`` None: no wall clock
        (offline replays and unit tests): only lateness is judged."""
        skew = self.max_skew_ms if max_skew_ms is None else max_skew_ms
        if now_ms is not None and ts > now_ms + skew:
            return "future"
        if (
            watermark is not None
            and ts < self.watermark(watermark, now_ms) - self.allowed_lateness_ms
        ):
            return "late"
        return None

    def watermark(self, watermark: int, now_ms: int | None) -> int:
        """The watermark lateness is measured from: never further ahead of the wall clock than
        the skew bound allows, so state left by older code with future event times does not
        make every new reading late."""
        return watermark if now_ms is None else min(watermark, now_ms + self.max_skew_ms)

    @staticmethod
    def judged_at(watermark: int, now_ms: int | None, before: int) -> int:
        """The event time a zone is judged at: its watermark, but not ahead of the wall clock,
        and never before the time it was last judged at."""
        t = watermark if now_ms is None else min(watermark, now_ms)
        return max(t, before)
