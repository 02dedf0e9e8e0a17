"""The one place crowdsafe touches Faust's private API.

A Faust table routes a write to the changelog partition of the stream's *current event*. The
agent handles a batch that spans partitions and writes each zone's entry once per batch, so
before each zone's lookup and write it makes one of that zone's own events current. Faust has no
public call for this (faust-streaming 0.15: ``Stream._set_current_event``); if a Faust upgrade
removes or renames it, :func:`check` fails at start-up and ``tests/worker/test_faust_compat.py``
fails in CI, instead of zones silently landing in the wrong partition.
"""

from __future__ import annotations

from typing import Any

import faust


def set_current_event(stream: faust.StreamT, event: faust.EventT) -> None:
    """Make ``event`` the stream's current event (table reads and writes use its partition)."""
    stream._set_current_event(event)  # noqa: SLF001 - see the module docstring


def check() -> None:
    """Raise if this Faust version no longer has the private method this module relies on."""
    from faust.streams import Stream

    method: Any = getattr(Stream, "_set_current_event", None)
    if not callable(method):
        raise RuntimeError(
            f"faust-streaming {faust.__version__} has no Stream._set_current_event: "
            "streams/worker/faust_compat.py needs a new way to route table writes per event"
        )
