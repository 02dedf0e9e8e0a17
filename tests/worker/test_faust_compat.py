"""The one private Faust API crowdsafe uses still exists and still routes table writes by the
current event's partition (faust_compat's promise; fails loudly on a Faust upgrade)."""

from __future__ import annotations

import faust

from streams.worker import faust_compat


class _Message:
    def __init__(self, partition: int, topic: str) -> None:
        self.partition, self.topic = partition, topic


class _Event:  # Faust keeps a weak reference to the current event
    def __init__(self, message: _Message) -> None:
        self.message = message


def test_private_set_current_event_exists():
    faust_compat.check()  # raises if Stream._set_current_event is gone


def test_set_current_event_makes_the_event_current():
    app = faust.App("compat-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    topic = app.topic("compat-test-topic")
    stream = app.stream(topic)
    event = _Event(_Message(partition=3, topic="compat-test-topic"))
    faust_compat.set_current_event(stream, event)
    assert stream.current_event is event
    # Tables find the partition through faust.streams.current_event (faust/tables/base.py).
    from faust.streams import current_event

    assert current_event() is event
    assert current_event().message.partition == 3
