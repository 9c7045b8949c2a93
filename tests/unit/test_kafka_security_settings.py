"""Every Kafka client's connection comes from the one settings model; secrets never show."""

from __future__ import annotations

import pytest

from processors.runtime import Settings
from processors.runtime.errors import SecurityConfigError
from processors.runtime.security import as_principal, client_config, describe, faust_credentials, principal_env


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert client_config(settings(), bootstrap="h:1") == {"bootstrap.servers": "h:1"}
    assert faust_credentials(settings()) is None


def test_sasl_ssl_gives_librdkafka_and_faust_the_same_connection(tmp_path) -> None:
    from chorus import secure

    found = secure.materials(tmp_path / "s")
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="trust",
        kafka_sasl_password="s3cret-pw",
        kafka_ssl_ca_location=str(found.ca),
    )
    config = client_config(s)
    assert config == {
        "bootstrap.servers": s.kafka_bootstrap_servers,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "trust",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": str(found.ca),
        "ssl.endpoint.identification.algorithm": "https",
    }
    creds = faust_credentials(s)
    assert (creds.protocol.value, creds.mechanism.value, creds.username) == ("SASL_SSL", "SCRAM-SHA-256", "trust")
    assert creds.ssl_context is not None and creds.ssl_context.check_hostname
    assert "s3cret-pw" not in repr(s) + str(s) + describe(s) + repr(creds)
    assert describe(s).endswith("(SASL_SSL, SCRAM-SHA-256 as trust)")


def test_incomplete_security_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(SecurityConfigError, match="CHORUS_KAFKA_SASL_USERNAME"):
        client_config(settings(kafka_security_protocol="SASL_PLAINTEXT"))
    with pytest.raises(SecurityConfigError, match="needs its key"):
        client_config(settings(kafka_security_protocol="SSL", kafka_ssl_certificate_location="c.pem"))


def test_mutual_tls_settings_reach_the_client() -> None:
    config = client_config(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_certificate_location="c.pem",
            kafka_ssl_key_location="k.pem",
            kafka_ssl_key_password="kp",
            kafka_ssl_check_hostname="false",
        )
    )
    assert config["ssl.certificate.location"] == "c.pem" and config["ssl.key.location"] == "k.pem"
    assert config["ssl.key.password"] == "kp" and config["ssl.endpoint.identification.algorithm"] == "none"


def test_a_principal_takes_its_own_user_from_the_principals_folder(tmp_path) -> None:
    from chorus import secure

    found = secure.materials(tmp_path)
    secure.write_env_files(found, "127.0.0.1:9092")
    admin = settings(**{k.lower().removeprefix("chorus_"): v for k, v in found.client_env("admin", "x:1").items()
                        if k.startswith("CHORUS_")})
    baseline = as_principal(admin, "baseline")
    assert baseline.kafka_sasl_username == "baseline"
    assert baseline.kafka_sasl_password.get_secret_value() == found.passwords["baseline"]
    assert baseline.kafka_principals_dir is None  # a processor never holds the others' credentials
    assert "CHORUS_KAFKA_PRINCIPALS_DIR" not in principal_env(admin, "baseline")
    assert as_principal(settings(), "baseline") == settings()
    for principal in secure.PRINCIPALS:
        assert (found.env_file(principal).stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "users.json").stat().st_mode & 0o777 == 0o600
