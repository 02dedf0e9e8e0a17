"""How every crowdsafe client reaches Kafka: bootstrap servers, TLS and SASL from settings.

The worker (Faust/aiokafka), the edge producers, dispatch, replay, the camera and the test
harness all take their connection settings from here, so one set of variables
(``KAFKA_BOOTSTRAP``, ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``,
``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD_FILE``, ``KAFKA_SSL_CAFILE``) serves any cluster.
The password is read from its file when a client is built and never logged or exported.
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.config.settings import Settings


class KafkaConfigError(ValueError):
    """Security settings that cannot work together; the message names the variable."""


def _password(settings: Settings) -> str:
    path = settings.kafka_sasl_password_file
    if path is None:
        raise KafkaConfigError(
            f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "KAFKA_SASL_PASSWORD_FILE (a file holding the password)"
        )
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise KafkaConfigError(f"KAFKA_SASL_PASSWORD_FILE={path}: {exc.strerror}") from exc


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context verifying the broker against ``KAFKA_SSL_CAFILE`` (or the system's
    CAs), with host name checking; None without TLS."""
    if "SSL" not in settings.kafka_security_protocol:
        return None
    try:
        return ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaConfigError(f"KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile}: {exc}") from exc


def _sasl(settings: Settings) -> bool:
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL") and not settings.kafka_sasl_username:
        raise KafkaConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME")
    return protocol.startswith("SASL")


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python and aiokafka clients (producer, consumer, admin).

    >>> client_kwargs(Settings(KAFKA_BOOTSTRAP="127.0.0.1:9092"))["security_protocol"]
    'PLAINTEXT'
    """
    out: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        out["ssl_context"] = context
    if _sasl(settings):
        out["sasl_mechanism"] = settings.kafka_sasl_mechanism
        out["sasl_plain_username"] = settings.kafka_sasl_username
        out["sasl_plain_password"] = _password(settings)
    return out


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for the Faust app (None for PLAINTEXT)."""
    import faust

    context = ssl_context(settings)
    if _sasl(settings):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
