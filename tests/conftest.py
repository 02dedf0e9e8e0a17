"""Fixtures for tests against the real Kafka broker and a real ``crowdsafe worker`` process.

The broker is the one at ``KAFKA_BOOTSTRAP`` (what ``.ci/run`` starts); when that is unset and
nothing answers on the default port, the local broker is started here and stopped afterwards.
Each pipeline test gets its own topics, app id and state folder, so runs never see each other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.testing import Sandbox


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from streams.config.settings import Settings
    from streams.ops.kafka_local import BrokerConfig, down, up

    settings = Settings()
    if _reachable(settings.kafka_bootstrap):
        yield settings.kafka_bootstrap
        return
    if os.environ.get("KAFKA_BOOTSTRAP"):
        pytest.fail(f"KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not answer")
    config = BrokerConfig.from_settings(settings)
    up(config)
    try:
        yield config.bootstrap
    finally:
        down(config)


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Sandbox]:
    p = Sandbox(kafka_bootstrap, tmp_path)
    p.ensure_topics()
    try:
        yield p
    finally:
        p.stop_centre()
        p.stop_worker()
        p.delete_topics()


@pytest.fixture(scope="session")
def schema_file():
    """``schema_file("alert")``: a validator of the committed ``deploy/schemas/alert.v2.json``
    (the newest version; ``schema_file("alert", 1)`` for another), the file other teams validate
    against (not the model it is generated from)."""
    import functools
    import json

    from jsonschema import Draft202012Validator

    from streams.commands.schemas import default_dir
    from streams.schema.catalog import latest

    @functools.cache
    def validator(name: str, version: int | None = None) -> Draft202012Validator:
        version = version or latest(name)
        schema = json.loads((default_dir() / f"{name}.v{version}.json").read_text())
        Draft202012Validator.check_schema(schema)
        return Draft202012Validator(schema)

    return validator
