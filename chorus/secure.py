"""The secure local broker: TLS from a locally generated CA, SASL (SCRAM and PLAIN) users, and ACLs.

`chorus stack up --secure` and the secure-broker tests use it. What it makes, under one folder:

- `ca.pem` / `ca.key`: a CA generated here with `cryptography` (10 years; never leaves the folder);
  `broker.pem`: the broker's key and certificate (SAN 127.0.0.1 and localhost) signed by it;
- `users.json` (0600): a random password per principal; `<principal>.env` (0600): the settings a
  client of that principal needs (`set -a; . admin.env; set +a`);
- the broker's `server.properties`: one SASL_SSL listener for clients (SCRAM-SHA-256,
  SCRAM-SHA-512, PLAIN), a SASL_SSL controller listener (PLAIN, the broker's own user only), the
  KRaft `StandardAuthorizer`, `allow.everyone.if.no.acl.found=false`, super users `broker` and
  `admin`. SCRAM credentials are written into the metadata log when the storage is formatted.

ACLs (`acl_bindings`): each processor reads its sources and writes only its outputs and the
dead-letter topic; the simulator writes the fleet's topics and `sim.truth` and reads the
decisions it obeys; an agent writes only `agent.intentions` and `agent.vitals` (not
`agent.intentions.admitted`, the gate's output); the operator writes only `immune.commands`
and reads `immune.*`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from processors.conflict.topics import INTERNAL_TOPICS
from processors.quarantine.topics import INTERNAL_TOPICS as QUARANTINE_INTERNAL
from processors.trust.topics import INTERNAL_TOPICS as TRUST_INTERNAL
from schemas import (
    ADMITTED,
    ANOMALIES,
    BASELINES,
    COMMANDS,
    CONFLICTS,
    DEADLETTER,
    DIAGNOSES,
    HEALING,
    HELD,
    INTENTIONS,
    MEMORY,
    QUARANTINE,
    RECOVERY,
    TRUST,
    TRUTH,
    VITALS,
)

BROKER_USER = "broker"
ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

# principal -> (topics it reads, topics it writes, consumer-group prefixes it uses). The processors'
# reads are their sources (tests/unit/test_secure_stack_acls.py holds them to it).
# Each processor's internal topics (re-keyed copies of its inputs) are written by its relays and read by it.
_CLAIMS = tuple(t.name for t in INTERNAL_TOPICS)
_BY_AGENT = tuple(t.name for t in TRUST_INTERNAL)
_SEQUENCED = tuple(t.name for t in QUARANTINE_INTERNAL)
GRANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "baseline": ((VITALS.name, QUARANTINE.name), (ANOMALIES.name, BASELINES.name, DEADLETTER.name), ("chorus-baseline",)),
    "trust": (
        (ANOMALIES.name, CONFLICTS.name, INTENTIONS.name, COMMANDS.name, *_BY_AGENT),
        (TRUST.name, DEADLETTER.name, *_BY_AGENT),
        ("chorus-trust",),
    ),
    # Its relays read intentions (repartitioned to the claims topic) and, with Gemini, its own predictions.
    "conflict": (
        (INTENTIONS.name, CONFLICTS.name, *_CLAIMS),
        (CONFLICTS.name, DEADLETTER.name, *_CLAIMS),
        ("chorus-conflict",),
    ),
    "quarantine": (
        (TRUST.name, CONFLICTS.name, ANOMALIES.name, COMMANDS.name, RECOVERY.name, INTENTIONS.name, *_SEQUENCED),
        (QUARANTINE.name, ADMITTED.name, HELD.name, DEADLETTER.name, *_SEQUENCED),
        ("chorus-quarantine",),
    ),
    "healing": (
        (QUARANTINE.name, VITALS.name, HELD.name, BASELINES.name, ANOMALIES.name, TRUST.name, CONFLICTS.name,
         COMMANDS.name, DIAGNOSES.name, HEALING.name, RECOVERY.name),
        (DIAGNOSES.name, HEALING.name, RECOVERY.name, MEMORY.name, DEADLETTER.name),
        ("chorus-healing",),
    ),
    "simulator": (
        (QUARANTINE.name, ADMITTED.name, HEALING.name),
        (INTENTIONS.name, VITALS.name, TRUTH.name),
        ("chorus-simulator-",),
    ),
    "agent": ((QUARANTINE.name, HEALING.name), (INTENTIONS.name, VITALS.name), ("chorus-agent-",)),
    "operator": ((), (COMMANDS.name,), ("chorus-operator-",)),
}
PRINCIPALS = (ADMIN, *GRANTS)


@dataclass(frozen=True)
class Materials:
    """Where the secure stack's files are, and the passwords (from users.json)."""

    directory: Path
    passwords: dict[str, str]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        return self.directory / "broker.pem"

    def env_file(self, principal: str) -> Path:
        return self.directory / f"{principal}.env"

    def client_env(self, principal: str, bootstrap: str) -> dict[str, str]:
        """The environment a client of `principal` runs with (what `<principal>.env` holds)."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CHORUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CHORUS_KAFKA_SASL_MECHANISM": MECHANISM,
            "CHORUS_KAFKA_SASL_USERNAME": principal,
            "CHORUS_KAFKA_SASL_PASSWORD": self.passwords[principal],
            "CHORUS_KAFKA_SSL_CA_LOCATION": str(self.ca),
        }
        if principal == ADMIN:  # the demo runs each processor and the simulator as its own principal
            env["CHORUS_KAFKA_PRINCIPALS_DIR"] = str(self.directory)
        return env


def materials(directory: Path) -> Materials:
    """Create what is missing (CA, broker certificate, passwords, env files are written later); reuse the rest."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    users = directory / "users.json"
    passwords = json.loads(users.read_text()) if users.exists() else {}
    for principal in (BROKER_USER, *PRINCIPALS):
        passwords.setdefault(principal, secrets.token_urlsafe(24))
    _write_private(users, json.dumps(passwords, indent=2))
    found = Materials(directory, passwords)
    if not (found.ca.exists() and found.broker_pem.exists()):
        _certificates(directory)
    return found


def write_env_files(found: Materials, bootstrap: str) -> None:
    for principal in PRINCIPALS:
        lines = [f"{k}={v}" for k, v in found.client_env(principal, bootstrap).items()]
        _write_private(found.env_file(principal), "\n".join(lines) + "\n")


def broker_properties(found: Materials, host: str, port: int, controller: int) -> str:
    pw = found.passwords
    plain_users = " ".join(f'user_{name}="{pw[name]}"' for name in (BROKER_USER, *PRINCIPALS))
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller}
listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller}
advertised.listeners=SASL_SSL://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config={plain} username="{BROKER_USER}" password="{pw[BROKER_USER]}" {plain_users};
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={plain} username="{BROKER_USER}" password="{pw[BROKER_USER]}" user_{BROKER_USER}="{pw[BROKER_USER]}";
ssl.keystore.type=PEM
ssl.keystore.location={found.broker_pem}
ssl.truststore.type=PEM
ssl.truststore.location={found.ca}
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{BROKER_USER};User:{ADMIN}
"""


def scram_format_args(found: Materials) -> list[str]:
    """`kafka-storage format` arguments that write every principal's SCRAM credentials into the metadata."""
    args: list[str] = []
    for principal in PRINCIPALS:
        for mechanism in SCRAM_MECHANISMS:
            args += ["--add-scram", f"{mechanism}=[name={principal},password={found.passwords[principal]}]"]
    return args


def acl_bindings() -> list:
    """Every ACL of the secure stack (confluent-kafka AclBinding values)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    def allow(principal: str, kind: ResourceType, name: str, operation: AclOperation, pattern=ResourcePatternType.LITERAL):
        return AclBinding(kind, name, pattern, f"User:{principal}", "*", operation, AclPermissionType.ALLOW)

    bindings = []
    for principal, (reads, writes, groups) in GRANTS.items():
        for topic in reads:
            bindings.append(allow(principal, ResourceType.TOPIC, topic, AclOperation.READ))
        for topic in writes:
            bindings.append(allow(principal, ResourceType.TOPIC, topic, AclOperation.WRITE))
        for group in groups:
            bindings.append(allow(principal, ResourceType.GROUP, group, AclOperation.READ, ResourcePatternType.PREFIXED))
    # each worker makes sure its internal topics exist
    for principal, owned in (("conflict", _CLAIMS), ("trust", _BY_AGENT), ("quarantine", _SEQUENCED)):
        for topic in owned:
            bindings.append(allow(principal, ResourceType.TOPIC, topic, AclOperation.CREATE))
    bindings.append(allow("operator", ResourceType.TOPIC, "immune.", AclOperation.READ, ResourcePatternType.PREFIXED))
    return bindings


def apply_acls(admin_config: dict) -> int:
    """Create the ACLs (idempotent); returns how many bindings."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config)
    bindings = acl_bindings()
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result(timeout=30)
    return len(bindings)


# --- certificates -------------------------------------------------------------------


def _certificates(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Chorus local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chorus-broker")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pkcs8 = serialization.PrivateFormat.PKCS8
    pem = serialization.Encoding.PEM
    _write_private(directory / "ca.key", ca_key.private_bytes(pem, pkcs8, serialization.NoEncryption()).decode())
    _write_private(
        directory / "broker.pem",
        key.private_bytes(pem, pkcs8, serialization.NoEncryption()).decode()
        + cert.public_bytes(pem).decode()
        + ca.public_bytes(pem).decode(),
    )
    (directory / "ca.pem").write_text(ca.public_bytes(pem).decode())


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
