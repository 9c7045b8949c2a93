"""The secure broker of `chorus stack up --secure`: every refusal asserted here is the broker's own.

A client without credentials, with a wrong password, or a principal writing a topic its ACLs do
not grant gets nothing written; the principals' own writes go through, over SASL_SSL, with every
mechanism the settings model offers. Then the real processors and the demo run on it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from schemas import (
    ADMITTED,
    COMMANDS,
    DEADLETTER,
    INTENTIONS,
    PARTITIONER,
    QUARANTINE,
    TRUST,
    VITALS,
)
from tests.operators import make_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RDKAFKA_LOG = logging.getLogger("rdkafka")  # librdkafka's connection errors, shown only for a failing test


def write(config: dict, topic: str, value: bytes = b"{}", *, timeout_ms: int = 20000) -> KafkaError | None:
    """Produce one message; the delivery error (None: written)."""
    outcome: list[KafkaError | None] = []
    producer = Producer(
        {**config, "partitioner": PARTITIONER, "message.timeout.ms": timeout_ms, "logger": RDKAFKA_LOG}
    )
    producer.produce(topic, value, b"k", on_delivery=lambda err, _msg: outcome.append(err))
    left = producer.flush(30)
    assert left == 0 and outcome, "no delivery report"
    return outcome[0]


def test_a_client_without_credentials_is_refused(secure_broker) -> None:
    for config in (
        {"bootstrap.servers": secure_broker.bootstrap},  # plaintext against the TLS listener
        {"bootstrap.servers": secure_broker.bootstrap, "security.protocol": "SSL",
         "ssl.ca.location": str(secure_broker.materials.ca)},  # TLS but no SASL
    ):
        with pytest.raises(KafkaException):
            AdminClient({**config, "socket.timeout.ms": 3000, "logger": RDKAFKA_LOG}).list_topics(timeout=5)
        err = write(config, VITALS.name, timeout_ms=5000)
        assert err is not None, "an unauthenticated client wrote to the broker"


def test_a_wrong_password_is_refused_by_the_broker(secure_broker) -> None:
    refusals: list[KafkaError] = []
    config = secure_broker.config("simulator", CHORUS_KAFKA_SASL_PASSWORD="guessed")
    err = write({**config, "error_cb": refusals.append}, VITALS.name, timeout_ms=5000)
    assert err is not None
    # The broker's SASL answer, as librdkafka reports it: "Authentication failed ... invalid credentials".
    assert any(e.code() == KafkaError._AUTHENTICATION and "invalid credentials" in e.str() for e in refusals), refusals


def test_an_unknown_ca_is_refused_by_the_client(secure_broker, tmp_path) -> None:
    # The broker's certificate is checked against the configured CA: the system CAs do not trust it.
    config = secure_broker.config("simulator")
    config.pop("ssl.ca.location")
    with pytest.raises(KafkaException):
        AdminClient({**config, "socket.timeout.ms": 3000, "logger": RDKAFKA_LOG}).list_topics(timeout=5)


@pytest.mark.parametrize(
    ("principal", "topic", "allowed"),
    [
        ("simulator", VITALS.name, True),
        ("simulator", INTENTIONS.name, True),
        ("simulator", QUARANTINE.name, False),  # the case: the simulator cannot quarantine anyone
        ("simulator", ADMITTED.name, False),  # nor slip intentions past the gate
        ("simulator", COMMANDS.name, False),
        ("agent", INTENTIONS.name, True),
        ("agent", ADMITTED.name, False),
        ("agent", TRUST.name, False),
        ("operator", COMMANDS.name, True),
        ("operator", QUARANTINE.name, False),
        ("operator", VITALS.name, False),
        ("baseline", QUARANTINE.name, False),
        ("trust", QUARANTINE.name, False),
        ("trust", TRUST.name, True),
        ("quarantine", QUARANTINE.name, True),
        ("quarantine", TRUST.name, False),
        ("quarantine", DEADLETTER.name, True),
    ],
)
def test_each_principal_writes_only_what_its_acls_grant(secure_broker, principal, topic, allowed) -> None:
    err = write(secure_broker.config(principal), topic)
    if allowed:
        assert err is None, err
    else:
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_every_sasl_mechanism_of_the_settings_model_connects(secure_broker, mechanism) -> None:
    config = secure_broker.config("simulator", CHORUS_KAFKA_SASL_MECHANISM=mechanism)
    assert config["sasl.mechanism"] == mechanism and config["security.protocol"] == "SASL_SSL"
    assert write(config, VITALS.name) is None


def test_the_processors_run_as_their_own_principals_over_sasl_ssl(secure_broker, services, tmp_path) -> None:
    """The quarantine worker (Faust's aiokafka client and the confluent engine) decides on a signed
    command over SASL_SSL; the command is produced by the operator principal through `chorus command`."""
    from tests.integration.runtime_workers import running_worker
    from tests.services import Services, principal_environment

    run_id = f"secure-{uuid.uuid4().hex[:10]}"
    alice = make_key(tmp_path, "alice")
    secured = Services(secure_broker.bootstrap, services.redis_url, "secure broker")
    with principal_environment(secure_broker.env("admin")):
        from tests.integration.runtime_workers import TopicReader

        reader = TopicReader(secured, [QUARANTINE], run_id)
        start_env = {k: v for k, v in secure_broker.env("quarantine").items()}
        try:
            # running_worker positions the group as admin (this process's environment), then starts the worker
            # with the quarantine principal's settings on top.
            with running_worker("quarantine", secured, run_id, [TRUST, COMMANDS, INTENTIONS], tmp_path,
                                CHORUS_OPERATOR_PUBLIC_KEYS=str(alice.public_path), **start_env):
                operator_env = {**os.environ, **secure_broker.env("operator"), "CHORUS_RUN_ID": run_id,
                                "CHORUS_OPERATOR_KEY": str(alice.private_path)}
                subprocess.run(
                    [sys.executable, "-c", "from chorus.cli import main; main()", "command", "quarantine", "a1",
                     "--reason", "over TLS"],
                    env=operator_env, capture_output=True, text=True, timeout=120, check=True,
                )
                seen = reader.wait_for(lambda s: bool(s), timeout_s=120)
        finally:
            reader.close()
    [(_, decision)] = seen
    assert (decision["agent_id"], decision["action"], decision["signed_by"]) == ("a1", "quarantine", alice.key_id)
    log = (tmp_path / "quarantine.log").read_text()
    assert "SASL_SSL, SCRAM-SHA-512 as quarantine" in log
    assert secure_broker.materials.passwords["quarantine"] not in log  # never logged


def test_the_demo_runs_end_to_end_over_sasl_ssl(secure_broker, services) -> None:
    """`chorus demo` with admin.env: four processors as their own principals, the simulator as its own."""
    env = {**os.environ, **secure_broker.env("admin"), "REDIS_URL": services.redis_url}
    result = subprocess.run(
        [sys.executable, "-c", "from chorus.cli import main; main()", "demo", "--scenario", "hoarder",
         "--agents", "100", "--duration", "45", "--speed", "1"],
        env=env, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout
    print(report)
    # The loop ran over SASL_SSL under the ACLs: the simulator's truth reached the demo's observer,
    # and decisions of the processors (which read the simulator's events) came back. Whether the
    # hoarder is caught in time is the plaintext end-to-end test's subject: on a loaded machine a
    # cold broker can make the processors lag past the short run.
    seen = re.search(r"events seen: (.*)", report)
    assert seen and "ground_truth" in seen.group(1), report[-3000:]
    assert re.search(r"\d+ (anomaly|trust_change|conflict_prediction)", seen.group(1)), report[-3000:]
    for password in secure_broker.materials.passwords.values():
        assert password not in result.stdout + result.stderr
