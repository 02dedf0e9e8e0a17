"""One typed settings object, read from ``CROWDSAFE_*`` environment variables and
``KAFKA_BOOTSTRAP``; validated at load time."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.config.paths import bundled_site, default_kafka_lib_dir, default_state_dir


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWDSAFE_", extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "CROWDSAFE_KAFKA_BOOTSTRAP"),
    )
    # Defaults depend on whether this runs from a checkout or installed (streams/config/paths.py).
    site: Path = Field(default_factory=bundled_site)
    state_dir: Path = Field(default_factory=default_state_dir)
    # Local broker (crowdsafe kafka up).
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_data_dir: Path | None = None
    kafka_heap: str = Field("512m", pattern=r"^[1-9][0-9]*[mMgG]$")  # broker JVM -Xmx
    # The broker's jars (fetched once with mvn), shared by every state dir.
    kafka_lib_dir: Path = Field(default_factory=default_kafka_lib_dir)
    # Topics.
    topic_partitions: int = Field(4, ge=1, le=256)
    readings_topic: str = "crowd.readings"
    zone_state_topic: str = "crowd.zone-state"
    alerts_topic: str = "crowd.alerts"
    deadletter_topic: str = "crowd.deadletter"
    # Worker.
    app_id: str = "crowdsafe"
    web_port: int = Field(6066, ge=1, le=65535)
    store: str = "rocksdb://"
    # How often the worker checks for zones whose every source went silent (0: never).
    silence_sweep_s: float = Field(10.0, ge=0)
    # Readings stamped further ahead of the wall clock than this are rejected as absurd.
    max_future_skew_s: float = Field(86_400.0, gt=0)

    @property
    def ticks_topic(self) -> str:
        """The worker's internal clock ticks, co-partitioned with the readings (by zone id)."""
        return f"{self.app_id}.ticks"

    @property
    def kafka_dir(self) -> Path:
        return self.kafka_data_dir or self.state_dir / "kafka"


@lru_cache
def get_settings() -> Settings:
    return Settings()
