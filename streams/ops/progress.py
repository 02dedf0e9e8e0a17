"""Progress of long work on standard error: a bar redrawn in place on a terminal, a quiet line
every ``every_s`` seconds otherwise (logs, CI), nothing when ``total`` is tiny."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``step()`` per item done; ``done()`` clears the bar (the caller prints its summary).

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("scoring", 4, out=out, every_s=0.0)
    >>> for _ in range(4):
    ...     p.step()
    >>> p.done()
    >>> out.getvalue().splitlines()[-1]
    'scoring: 4/4 (100 %)'
    """

    def __init__(
        self,
        label: str,
        total: int,
        out: TextIO | None = None,
        every_s: float = 10.0,
        minimum: int = 1,
    ) -> None:
        self.label, self.total, self.n = label, max(total, 0), 0
        self.out = out if out is not None else sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.every_s = 0.2 if self.tty else every_s
        self.quiet = self.total < minimum
        self._last = time.monotonic()
        self._shown = False

    def step(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if self.quiet or now - self._last < self.every_s:
            return
        self._last = now
        self._show()

    def _show(self) -> None:
        share = self.n / self.total if self.total else 1.0
        text = f"{self.label}: {self.n:,}/{self.total:,} ({share * 100:.0f} %)"
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(f"\r{text} [{bar:<30}]")
        else:
            self.out.write(text + "\n")
        self.out.flush()
        self._shown = True

    def done(self) -> None:
        if self.quiet:
            return
        if self.tty:
            if self._shown:
                self.out.write("\r\033[K")
                self.out.flush()
            return
        if self.n and (self._shown or self.every_s == 0.0):
            self._show()
