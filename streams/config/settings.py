"""One typed settings object, read from ``CROWDSAFE_*`` environment variables and
``KAFKA_BOOTSTRAP``; validated at load time."""

from __future__ import annotations

import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
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
    # Security of every Kafka client (streams/config/kafka.py); unprefixed like KAFKA_BOOTSTRAP.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", validation_alias=AliasChoices("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME")
    )
    kafka_sasl_password_file: Path | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD_FILE")
    )
    kafka_ssl_cafile: Path | None = Field(None, validation_alias=AliasChoices("KAFKA_SSL_CAFILE"))
    # How long a client tries to reach the cluster before giving up with a clear error.
    kafka_connect_timeout_s: float = Field(15.0, gt=0, le=300)
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
    # The alert machinery (README "Incidents"): acknowledgements and resolutions in, silences
    # in, the audit trail and CAP 1.2 messages out, and one topic per route: prefix + route id.
    acks_topic: str = "crowd.alerts.ack"
    silences_topic: str = "crowd.silences"
    audit_topic: str = "crowd.audit"
    cap_topic: str = "crowd.alerts.cap"
    dispatch_topic_prefix: str = "crowd.dispatch."
    # CAP <status>: Exercise when set (drills, demos) or when the data is simulated, else Actual.
    exercise: bool = False
    # Alerts, acknowledgements, audit, CAP and dispatch are the record of what happened: kept this
    # long whatever the broker's default.
    alerts_retention_days: float = Field(400.0, gt=0)
    replication_factor: int = Field(1, ge=1, le=16)  # of the app's topics on a real cluster
    # Worker.
    app_id: str = "crowdsafe"
    # Stable id of one worker process: its local state folder and its static consumer-group
    # membership, so a restarted worker finds its own state and partitions (default: host and
    # web port, which two workers on one host cannot share).
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    web_host: str = "127.0.0.1"  # the worker's web server (/metrics, /health, JSON) binds here
    web_port: int = Field(6067, ge=1, le=65535)
    store: str = "rocksdb://"
    # Per-zone Prometheus series (6-8 gauges a zone) for the first this many zones of the site
    # file only (0: none): a city of 100,000 zones would be ~700,000 series. Every zone still
    # counts in crowdsafe_zones{kind, level} (README "Operations").
    metrics_zone_limit: int = Field(1000, ge=0)
    # The command centre (crowdsafe centre): its page, API and event stream.
    centre_host: str = "127.0.0.1"
    centre_port: int = Field(6066, ge=1, le=65535)
    # Its users (name, role, token hash); default <state dir>/centre/users.toml.
    users_file: Path | None = None
    # A single-operator setup: this token is accepted as the operator "operator" (never logged).
    token: SecretStr | None = None
    # When a zone not updated for this long is shown stale (default: the site's stale_after_s).
    centre_stale_after_s: float | None = Field(None, gt=0)
    # How far back the centre reads crowd.zone-state for the open hourly occupancy data.
    centre_open_data_hours: int = Field(24, ge=1, le=24 * 31)
    # How long a page login lasts without use.
    centre_session_idle_s: float = Field(12 * 3600.0, gt=0)
    # The readings come from the simulator, its story this many times faster than the clock:
    # the page then says "simulated ×N" instead of "live" (the demo sets it; 0: simulated, speed
    # not told). The centre cannot tell from the zone states, which do not say.
    centre_simulation_speed: float | None = Field(None, ge=0)
    # Where this repository's docs/ are served: `crowdsafe rules` links each alert rule's runbook.
    runbook_base_url: str | None = Field(None, pattern=r"^https?://\S+$")
    # How long the group waits for a silent worker before giving its partitions to another.
    session_timeout_s: float = Field(10.0, ge=6, le=300)
    # A worker asked to stop (SIGTERM, Ctrl-C) that has not exited after this long exits hard:
    # whatever it had not committed is re-delivered to whoever takes its partitions.
    stop_timeout_s: float = Field(20.0, gt=0, le=600)
    # The agent handles what has arrived at most this long after its batch's first message (or
    # 500 messages, sooner): a reading waits for it at idle; a shorter one means more batches.
    batch_window_s: float = Field(0.05, gt=0, le=5)
    # How often the worker checks for zones whose every source went silent (0: never).
    silence_sweep_s: float = Field(10.0, ge=0)
    # Event time (streams/zone/clock.py): readings more than this behind their zone's watermark
    # are dead-lettered as late; readings more than this ahead of the wall clock are rejected
    # and their source flagged (per source: max_clock_skew_s in the site file).
    allowed_lateness_s: float = Field(900.0, ge=0)
    max_clock_skew_s: float = Field(300.0, ge=0)

    def dispatch_topic(self, route_id: str) -> str:
        """The topic of one route (site file ``[[routes]]``)."""
        return f"{self.dispatch_topic_prefix}{route_id}"

    @property
    def ticks_topic(self) -> str:
        """The worker's internal clock ticks, co-partitioned with the readings (by zone id)."""
        return f"{self.app_id}.ticks"

    @property
    def worker_name(self) -> str:
        """``worker_id``, or one derived from the host name and web port."""
        if self.worker_id:
            return self.worker_id
        host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:48] or "host"
        return f"{host}-{self.web_port}"

    @property
    def worker_state_dir(self) -> Path:
        """This worker's own local state (RocksDB): two workers never share a folder."""
        return self.state_dir / "worker" / self.app_id / self.worker_name

    @property
    def centre_users_file(self) -> Path:
        return self.users_file or self.state_dir / "centre" / "users.toml"

    @property
    def kafka_dir(self) -> Path:
        return self.kafka_data_dir or self.state_dir / "kafka"


def env_names(field: str) -> tuple[str, ...]:
    """The environment variables a field is read from: its aliases, else its prefixed name.

    >>> env_names("kafka_bootstrap"), env_names("web_port")
    (('KAFKA_BOOTSTRAP', 'CROWDSAFE_KAFKA_BOOTSTRAP'), ('CROWDSAFE_WEB_PORT',))
    """
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(name) for name in alias.choices)
    return (Settings.model_config["env_prefix"] + field.upper(),)


@lru_cache
def get_settings() -> Settings:
    return Settings()
