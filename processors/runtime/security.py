"""How every Kafka client connects: bootstrap servers plus the security settings, from the one settings model.

`client_config` is the only place a librdkafka (confluent-kafka) configuration gets its
`bootstrap.servers`, `security.protocol`, SASL and TLS entries; `faust_credentials` gives Faust's
aiokafka client the same. Passwords live in `SecretStr` and leave it only here, into the client's
configuration: `describe` is what may be logged.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .errors import SecurityConfigError
from .settings import Settings


def client_config(settings: Settings | None = None, *, bootstrap: str | None = None) -> dict[str, Any]:
    """librdkafka settings for a producer, consumer or admin client (add the client's own on top).

    `settings` defaults to the environment's; `bootstrap` overrides its servers (tools given an
    address explicitly), while the security settings still come from `settings`.
    """
    s = settings or Settings()
    check(s)
    config: dict[str, Any] = {"bootstrap.servers": bootstrap or s.kafka_bootstrap_servers}
    if s.kafka_security_protocol == "PLAINTEXT":
        return config
    config["security.protocol"] = s.kafka_security_protocol
    if s.kafka_security_protocol.startswith("SASL_"):
        assert s.kafka_sasl_username is not None and s.kafka_sasl_password is not None  # check() ensured it
        config["sasl.mechanism"] = s.kafka_sasl_mechanism
        config["sasl.username"] = s.kafka_sasl_username
        config["sasl.password"] = s.kafka_sasl_password.get_secret_value()
    if s.kafka_security_protocol.endswith("SSL"):
        if s.kafka_ssl_ca_location:
            config["ssl.ca.location"] = s.kafka_ssl_ca_location
        if s.kafka_ssl_certificate_location:
            config["ssl.certificate.location"] = s.kafka_ssl_certificate_location
            config["ssl.key.location"] = s.kafka_ssl_key_location
        if s.kafka_ssl_key_password is not None:
            config["ssl.key.password"] = s.kafka_ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = "https" if s.kafka_ssl_check_hostname else "none"
    return config


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials` for the same connection (None for PLAINTEXT)."""
    import faust  # the runtime's app factory is the only user; keep this module importable without Faust

    s = settings
    check(s)
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(s) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    assert s.kafka_sasl_username is not None and s.kafka_sasl_password is not None
    credentials = faust.SASLCredentials(
        username=s.kafka_sasl_username,
        password=s.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        mechanism=s.kafka_sasl_mechanism,
    )
    # Faust derives the protocol from the credentials' type: SASL with a context is SASL_SSL.
    return credentials


def ssl_context(s: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=s.kafka_ssl_ca_location)
    context.check_hostname = s.kafka_ssl_check_hostname
    if s.kafka_ssl_certificate_location:
        context.load_cert_chain(
            s.kafka_ssl_certificate_location,
            s.kafka_ssl_key_location,
            s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None,
        )
    return context


def check(s: Settings) -> None:
    """Refuse settings a client could not connect with, naming what is missing."""
    protocol = s.kafka_security_protocol
    if protocol.startswith("SASL_") and (not s.kafka_sasl_username or s.kafka_sasl_password is None):
        raise SecurityConfigError(
            f"CHORUS_KAFKA_SECURITY_PROTOCOL={protocol} needs CHORUS_KAFKA_SASL_USERNAME and CHORUS_KAFKA_SASL_PASSWORD"
        )
    if bool(s.kafka_ssl_certificate_location) != bool(s.kafka_ssl_key_location):
        raise SecurityConfigError(
            "a client certificate needs its key: set both CHORUS_KAFKA_SSL_CERTIFICATE_LOCATION and "
            "CHORUS_KAFKA_SSL_KEY_LOCATION"
        )


def principal_env(s: Settings, principal: str) -> dict[str, str]:
    """The environment of `principal` from `<kafka_principals_dir>/<principal>.env`; empty without a folder."""
    if not s.kafka_principals_dir:
        return {}
    path = Path(s.kafka_principals_dir) / f"{principal}.env"
    try:
        text = path.read_text()
    except OSError as exc:
        raise SecurityConfigError(f"no credentials for principal {principal!r}: {exc}") from exc
    env = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            env[name.strip()] = value.strip()
    env.pop("CHORUS_KAFKA_PRINCIPALS_DIR", None)  # a principal's process does not hand out others' credentials
    return env


def as_principal(s: Settings, principal: str) -> Settings:
    """`s` with the SASL user of `principal` (from the principals folder); `s` itself without one."""
    env = principal_env(s, principal)
    if not env:
        return s
    return s.model_copy(
        update={
            "kafka_sasl_username": env.get("CHORUS_KAFKA_SASL_USERNAME", principal),
            "kafka_sasl_password": SecretStr(env["CHORUS_KAFKA_SASL_PASSWORD"]),
            "kafka_principals_dir": None,
        }
    )


def describe(s: Settings) -> str:
    """The connection in words, for logs and errors: never a password."""
    text = f"{s.kafka_bootstrap_servers} ({s.kafka_security_protocol}"
    if s.kafka_security_protocol.startswith("SASL_"):
        text += f", {s.kafka_sasl_mechanism} as {s.kafka_sasl_username}"
    return text + ")"
