"""A secure mode for the local broker: SASL_SSL (SCRAM-SHA-512) and ACLs enforced.

The local demo broker (``crowdsafe kafka up``) is PLAINTEXT on loopback. With a
:class:`BrokerSecurity` in its :class:`~streams.ops.kafka_local.BrokerConfig` the same broker
instead has

* one client listener ``SASL_SSL://127.0.0.1:<port>``: TLS with a PEM certificate chain and key
  (no JKS, no keytool), SCRAM-SHA-512 logins; the broker talks to itself (inter-broker) on it
  as the admin user;
* the KRaft controller listener on loopback, SASL_PLAINTEXT with the PLAIN mechanism and the
  admin's password (SCRAM cannot authenticate controllers: its credentials live in the very
  metadata log the controller serves), so nobody on the machine reaches the controller
  anonymously;
* ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false`` and the admin as the only
  super user: every other principal can do exactly what its ACLs say (``streams/ops/acls.py``);
* the admin's SCRAM credential written into the metadata log when the storage is formatted
  (``kafka-storage format --add-scram``), as a salted password: the clear password is never on a
  command line. Other users are added by the admin at run time (:func:`upsert_scram_users`).

``server.properties`` then holds the admin password (in the JAAS lines) and is made readable
by its owner only. :func:`generate_tls` makes a throw-away CA and a server certificate for
127.0.0.1 with the ``cryptography`` package (``pip install 'crowdsafe[secure]'``); on a real
cluster, use the certificates of your PKI instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
CLIENT_LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate (clients' ``KAFKA_SSL_CAFILE``), the server's certificate
    chain and its unencrypted PKCS#8 private key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class BrokerSecurity:
    """What the broker needs for SASL_SSL with SCRAM and ACLs (see the module docstring)."""

    tls: TlsFiles
    admin_password_file: Path
    admin_user: str = "admin"

    def admin_password(self) -> str:
        return self.admin_password_file.read_text().strip()


def _jaas(module: str, user: str, password: str, **extra: str) -> str:
    for value in (user, password, *extra.values()):
        if '"' in value or "\\" in value:
            raise ValueError("SASL user names and passwords may not hold quotes or backslashes")
    more = "".join(f' {k}="{v}"' for k, v in extra.items())
    return f'{module} required username="{user}" password="{password}"{more};'


def listener_lines(port: int, controller_port: int, security: BrokerSecurity | None) -> dict:
    """The listener settings of ``server.properties``: PLAINTEXT without ``security``."""
    if security is None:
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised_listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "inter_broker_listener": "PLAINTEXT",
            "protocol_map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "security": "# Security: none. PLAINTEXT on loopback, no authentication, no ACLs.",
        }
    return {
        "listeners": (
            f"{CLIENT_LISTENER}://127.0.0.1:{port},{CONTROLLER_LISTENER}://127.0.0.1:{controller_port}"
        ),
        "advertised_listeners": f"{CLIENT_LISTENER}://127.0.0.1:{port}",
        "inter_broker_listener": CLIENT_LISTENER,
        "protocol_map": f"{CLIENT_LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SASL_PLAINTEXT",
        "security": security_block(security),
    }


def security_block(security: BrokerSecurity) -> str:
    """TLS, SASL and authoriser settings appended to ``server.properties``."""
    user, password = security.admin_user, security.admin_password()
    client = CLIENT_LISTENER.lower()
    controller = CONTROLLER_LISTENER.lower()
    scram = SCRAM_MECHANISM.lower()
    lines = [
        "# Security (streams/ops/secure_broker.py): SASL_SSL + SCRAM-SHA-512 for clients,",
        "# SASL_PLAIN on the loopback controller listener, ACLs enforced.",
        f"listener.name.{client}.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
        f"listener.name.{client}.{scram}.sasl.jaas.config="
        + _jaas("org.apache.kafka.common.security.scram.ScramLoginModule", user, password),
        f"listener.name.{client}.ssl.keystore.type=PEM",
        f"listener.name.{client}.ssl.keystore.location={_keystore_file(security)}",
        f"listener.name.{client}.ssl.truststore.type=PEM",
        f"listener.name.{client}.ssl.truststore.location={security.tls.ca_file}",
        "ssl.endpoint.identification.algorithm=https",
        "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        f"listener.name.{controller}.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.{controller}.plain.sasl.jaas.config="
        + _jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            user,
            password,
            **{f"user_{user}": password},
        ),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{user}",
        "allow.everyone.if.no.acl.found=false",
    ]
    return "\n".join(lines)


def _keystore_file(security: BrokerSecurity) -> Path:
    """Kafka's PEM keystore file: the private key followed by the certificate chain. Written
    next to the key (same folder, owner-only) by :func:`prepare`."""
    return security.tls.key_file.with_name(security.tls.key_file.stem + ".keystore.pem")


def prepare(security: BrokerSecurity) -> None:
    """Write the PEM keystore (key + chain) the broker reads; owner-only permissions."""
    path = _keystore_file(security)
    text = security.tls.key_file.read_text().rstrip() + "\n" + security.tls.cert_file.read_text()
    _write_private(path, text)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def scram_format_args(security: BrokerSecurity, salt: bytes | None = None) -> list[str]:
    """``kafka-storage format`` arguments that create the admin's SCRAM credential, as a salted
    password (PBKDF2, as SCRAM defines it) so that the clear password is on no command line."""
    salt = salt if salt is not None else os.urandom(24)
    salted = scram_salted_password(security.admin_password(), salt)
    spec = (
        f"{SCRAM_MECHANISM}=[name={security.admin_user},iterations={SCRAM_ITERATIONS},"
        f'salt="{_b64(salt)}",saltedpassword="{_b64(salted)}"]'
    )
    return ["--add-scram", spec]


def scram_salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's ``Hi(password, salt, i)``: PBKDF2-HMAC-SHA-512.

    >>> scram_salted_password("pw", b"salt", 1).hex()[:16]
    '9bbcdf4f0b03e358'
    """
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def client_env(bootstrap: str, tls: TlsFiles, user: str, password_file: Path) -> dict[str, str]:
    """The environment that points any crowdsafe client (worker, simulate, dispatch, replay,
    camera) at a secure broker as ``user``."""
    return {
        "KAFKA_BOOTSTRAP": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SASL_PASSWORD_FILE": str(password_file),
        "KAFKA_SSL_CAFILE": str(tls.ca_file),
    }


def admin_client_kwargs(bootstrap: str, security: BrokerSecurity) -> dict[str, Any]:
    """kafka-python keyword arguments for the admin (a super user) of a secure broker."""
    from streams.config.kafka import client_kwargs
    from streams.config.settings import Settings

    env = client_env(bootstrap, security.tls, security.admin_user, security.admin_password_file)
    return client_kwargs(Settings(**env))


def upsert_scram_users(admin_client_kwargs: Mapping, users: Mapping[str, str]) -> None:
    """Create or update SCRAM-SHA-512 users (name -> password) as the admin. Raises
    RuntimeError naming the users the broker refused (the messages hold no password)."""
    from kafka import KafkaAdminClient
    from kafka.admin import UserScramCredentialUpsertion

    admin = KafkaAdminClient(**admin_client_kwargs, client_id="crowdsafe-scram")
    try:
        result = admin.alter_user_scram_credentials(
            [
                UserScramCredentialUpsertion(
                    name, SCRAM_MECHANISM, password, iterations=SCRAM_ITERATIONS
                )
                for name, password in users.items()
            ]
        )
    finally:
        admin.close()
    failed = {name: error for name, error in result.items() if error}
    if failed:
        raise RuntimeError(f"SCRAM users refused by the broker: {failed}")


def generate_tls(folder: Path, host: str = "127.0.0.1", days: int = 30) -> TlsFiles:
    """A throw-away CA and a server certificate for ``host`` (an IP address or a DNS name,
    in the subject alternative name) signed by it, as PEM files in ``folder``; keys
    owner-only. Needs the ``cryptography`` package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crowdsafe local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(pem))
    # The chain: the server's certificate, then the CA's.
    files.cert_file.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    _write_private(files.key_file, key_pem)
    return files


def write_password(path: Path, password: str | None = None) -> Path:
    """A password file (owner-only), random unless given: the form every crowdsafe client
    reads (``KAFKA_SASL_PASSWORD_FILE``)."""
    _write_private(path, (password or base64.urlsafe_b64encode(os.urandom(24)).decode()) + "\n")
    return path
