"""The local stack: a real single-node Kafka broker (KRaft) from Maven Central jars, and redis-server.

Everything lives under one home folder (default `<project>/.chorus`, ignored by git):
the resolved classpath, broker data and log, Redis data and log, and `stack.json`,
which records exactly the processes `up` started so that `down` stops only those.
When KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set, that service is external and
nothing is started for it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from processors.runtime.settings import DEFAULT_KAFKA, DEFAULT_REDIS

from .errors import StackError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KAFKA_RECIPE = PROJECT_ROOT / "deploy" / "kafka"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

Say = Callable[[str], None]


@dataclass
class Service:
    name: str
    address: str
    pid: int | None = None  # None: external, not ours to stop
    started: int | None = None  # kernel start time of pid: tells our process from a reused pid
    log: str | None = None
    secure: bool = False  # a broker started by `chorus stack up --secure` (SASL_SSL + ACLs)

    def ours(self) -> bool:
        return self.pid is not None and self.started is not None and _start_time(self.pid) == self.started


def home() -> Path:
    return Path(os.environ.get("CHORUS_HOME", PROJECT_ROOT / ".chorus"))


def _state_file() -> Path:
    return home() / "stack.json"


def _load() -> dict[str, Service]:
    try:
        raw = json.loads(_state_file().read_text())
    except FileNotFoundError:
        return {}
    return {name: Service(**svc) for name, svc in raw.items()}


def _save(services: dict[str, Service]) -> None:
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps({n: asdict(s) for n, s in services.items()}, indent=2))


# --- process and port checks -------------------------------------------------------


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None once it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return None if fields[0] == "Z" else int(fields[19])


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _kafka_answers(bootstrap: str, config: dict | None = None) -> bool:
    """With `config` (a client configuration), as that client; else with the environment's security settings."""
    from confluent_kafka.admin import AdminClient

    from processors.runtime.security import client_config

    if not any(_answers(*_host_port(address)) for address in bootstrap.split(",")):
        return False  # spare librdkafka's retry loop (and its log lines) against a closed port
    try:
        AdminClient({**(config or client_config(bootstrap=bootstrap)), "socket.timeout.ms": 2000}).list_topics(timeout=3)
        return True
    except Exception:
        return False


def _require(tool: str, fix: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"{tool} not found on PATH: {fix}")
    return path


def _wait(ready: Callable[[], bool], what: str, svc: Service, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if not svc.ours():
            raise StackError(f"{what} exited during start-up; last lines of {log}:\n{_tail(log)}")
        time.sleep(0.2)
    raise StackError(f"{what} did not answer within {READY_TIMEOUT_S:.0f} s; last lines of {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(name: str, address: str, argv: list[str], log: Path) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # A session of its own: Ctrl-C in the terminal that ran `up` must not stop the stack.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Service(name, address, proc.pid, _start_time(proc.pid), str(log))


# --- Kafka ------------------------------------------------------------------------


def kafka_classpath(say: Say) -> str:
    """The broker's classpath, resolved by Maven once and cached beside a hash of the recipe."""
    pom = KAFKA_RECIPE / "pom.xml"
    if not pom.exists():
        raise StackError(f"Kafka recipe {pom} is missing: run chorus from a source checkout (pip install -e .)")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = home() / "kafka" / f"classpath-{digest}.txt"
    if cached.exists():
        classpath = cached.read_text().strip()
        if all(Path(jar).exists() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = _require("mvn", "install Maven (Debian: apt-get install maven) or set KAFKA_BOOTSTRAP_SERVERS")
    _require("java", "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)")
    say("resolving the Kafka broker jars with Maven (first start only; cached in ~/.m2)...")
    cached.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={cached}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not cached.exists():
        cached.unlink(missing_ok=True)
        raise StackError(f"Maven could not resolve the Kafka jars:\n{(result.stdout + result.stderr)[-3000:]}")
    return cached.read_text().strip()


def _kafka_properties(host: str, port: int, controller: int) -> str:
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
"""


def _single_node_storage(data: Path) -> str:
    """What any one-node local broker needs, plain or secure: its data and replication factors of one."""
    return f"""\
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
"""


def _start_kafka(bootstrap: str, say: Say, secure: bool = False) -> Service:
    host, port = _host_port(bootstrap)
    return start_kafka(home() / ("kafka-secure" if secure else "kafka"), host, port, port + 1, say, secure=secure)


def _cluster_id() -> str:
    """A Kafka cluster id: a random UUID in unpadded URL-safe base64, never starting with '-' (one in 64 would:
    the storage tool's argument parser then reads it as an option and fails; Kafka's own Uuid.randomUuid
    skips such ids for the same reason)."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]).startswith("-"):
        pass
    return cluster_id


def start_kafka(
    base: Path, host: str, port: int, controller: int, say: Say, *, secure: bool = False, classpath: str | None = None
) -> Service:
    """A broker with its data, config and log under `base`; with `secure`, SASL_SSL + ACLs
    (chorus/secure.py; credentials and env files in `base/secure`)."""
    java = _require("java", "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)")
    classpath = classpath or kafka_classpath(say)
    bootstrap = f"{host}:{port}"
    for busy in (port, controller):
        if _answers(host, busy):
            raise StackError(
                f"{host}:{busy} is already in use by another process: stop it, or set "
                f"KAFKA_BOOTSTRAP_SERVERS to use a broker that is already running"
            )
    data, config, log = base / "data", base / "server.properties", base / "kafka.log"
    config.parent.mkdir(parents=True, exist_ok=True)
    found = None
    if secure:
        from . import secure as tls

        found = tls.materials(base / "secure")
        properties = tls.broker_properties(found, host, port, controller)
        format_extra = tls.scram_format_args(found)
    else:
        properties, format_extra = _kafka_properties(host, port, controller), []
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the SASL users' passwords
    with os.fdopen(fd, "w") as out:
        out.write(properties + _single_node_storage(data))
    log4j = KAFKA_RECIPE / "log4j2.properties"
    jvm = [java, "-Xmx1g", "-Xms256m", f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={base}"]
    if not (data / "meta.properties").exists():
        cluster_id = _cluster_id()
        formatted = subprocess.run(
            [*jvm, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
             *format_extra],
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{formatted.stdout}{formatted.stderr}")
    say(f"starting {'secure (SASL_SSL) ' if secure else ''}Kafka broker on {host}:{port} (log: {log})")
    started = time.monotonic()
    svc = _spawn("kafka", bootstrap, [*jvm, "-cp", classpath, "kafka.Kafka", str(config)], log)
    svc.secure = secure
    if found is None:
        # The broker port opens only once the broker is ready; the controller port opens earlier.
        _wait(lambda: _answers(host, port) and _kafka_answers(bootstrap), "Kafka", svc, log)
    else:
        from processors.runtime.security import client_config

        from . import secure as tls

        admin = client_config(_settings_of(found.client_env(tls.ADMIN, bootstrap)))
        _wait(lambda: _answers(host, port) and _kafka_answers(bootstrap, admin), "Kafka", svc, log)
        count = tls.apply_acls(admin)
        tls.write_env_files(found, bootstrap)
        say(f"SASL_SSL with {count} ACLs; each principal's settings in {found.directory}/<principal>.env "
            f"({', '.join(tls.PRINCIPALS)})")
    say(f"Kafka ready in {time.monotonic() - started:.1f} s")
    return svc


def _settings_of(env: dict[str, str]):  # noqa: ANN202 - processors.runtime.Settings
    """Settings from an environment mapping instead of the process's own."""
    from processors.runtime.settings import Settings

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- Redis ------------------------------------------------------------------------


def _start_redis(url: str, say: Say) -> Service:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    server = _require("redis-server", "install it (Debian: apt-get install redis-server) or set REDIS_URL")
    if _answers(host, port):
        raise StackError(
            f"{host}:{port} is already in use by another process: stop it, or set REDIS_URL to use that Redis"
        )
    base = home() / "redis"
    base.mkdir(parents=True, exist_ok=True)
    log = base / "redis.log"
    argv = [server, "--bind", host, "--port", str(port), "--dir", str(base), "--appendonly", "yes",
            "--save", "", "--daemonize", "no", "--logfile", str(log)]  # fmt: skip
    say(f"starting Redis on {host}:{port} (log: {log})")
    svc = _spawn("redis", url, argv, log)
    _wait(lambda: _redis_answers(host, port), "Redis", svc, log)
    return svc


# --- the three verbs ----------------------------------------------------------------


def up(say: Say = print, *, secure: bool | None = None) -> dict[str, Service]:
    """Start what is not running yet; return the services to use once Kafka and Redis both answer.

    `secure` True starts the broker with SASL_SSL and ACLs (False: plaintext; None: whichever
    runs, plaintext when none does). `stack.json` records only processes started here: an
    external service named in the environment is used, never recorded, so it can never hide a
    local process from `down`.
    """
    local = {name: svc for name, svc in _load().items() if svc.ours()}
    use: dict[str, Service] = {}
    kafka = local.get("kafka")
    if kafka is not None and secure is not None and kafka.secure != secure:
        raise StackError(
            f"the local broker runs {'with' if kafka.secure else 'without'} --secure: `chorus stack down` first"
        )
    if kafka is not None and kafka.secure and secure is None and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        raise StackError(
            f"the local broker is secure (SASL_SSL): run as a principal, e.g. "
            f"`set -a; . {_secure_dir()}/admin.env; set +a`, then run the command again"
        )
    try:
        for name, variable, default, start in (
            ("kafka", "KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA, lambda a, s: _start_kafka(a, s, bool(secure))),
            ("redis", "REDIS_URL", DEFAULT_REDIS, _start_redis),
        ):
            external = os.environ.get(variable)
            if external:
                use[name] = Service(name, external)
            elif name in local:
                use[name] = local[name]
            else:
                local[name] = use[name] = start(default, say)
    finally:
        _save(local)
    for svc in use.values():
        if svc.pid is None and not _reachable(svc):
            raise StackError(f"external {svc.name} at {svc.address} does not answer")
    return use


def local_pids(addresses: Iterable[str]) -> dict[str, int]:
    """The pids of the services at these addresses that `up` started and that still run."""
    wanted = set(addresses)
    return {
        name: svc.pid for name, svc in _load().items() if svc.address in wanted and svc.pid is not None and svc.ours()
    }


@contextlib.contextmanager
def running(say: Say = print) -> Iterator[tuple[str, str]]:
    """Kafka bootstrap and Redis URL for the length of one command; whatever this call had
    to start, it stops again on the way out (Ctrl-C included), so a command leaves no process behind."""
    before = {name for name, svc in _load().items() if svc.ours()}
    services = up(say)
    try:
        yield services["kafka"].address, services["redis"].address
    finally:
        started = [svc for name, svc in services.items() if svc.pid is not None and name not in before]
        for svc in started:
            say(f"stopping {svc.name} (pid {svc.pid}), started for this command")
            _stop(svc)
        _save({name: svc for name, svc in _load().items() if svc.ours()})


def down(say: Say = print, *, purge: bool = False) -> None:
    """Stop exactly the processes `up` started; with purge, delete their data too."""
    for svc in _load().values():
        if svc.ours():
            say(f"stopping {svc.name} (pid {svc.pid})")
            _stop(svc)
    _state_file().unlink(missing_ok=True)
    if purge:
        for folder in ("kafka/data", "kafka-secure", "redis"):
            shutil.rmtree(home() / folder, ignore_errors=True)
        say(f"deleted broker and Redis data under {home()}")


def _stop(svc: Service) -> None:
    assert svc.pid is not None
    os.killpg(svc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while svc.ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    if svc.ours():
        os.killpg(svc.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(svc.pid, 0)  # reap it when this process started it (`running`), so no zombie is left


def _secure_dir() -> Path:
    return home() / "kafka-secure" / "secure"


def _reachable(svc: Service) -> bool:
    if svc.name == "kafka" and svc.secure:  # ours, secure: ask as its admin
        from processors.runtime.security import client_config

        from . import secure as tls

        found = tls.materials(_secure_dir())
        return _kafka_answers(svc.address, client_config(_settings_of(found.client_env(tls.ADMIN, svc.address))))
    if svc.name == "kafka":
        return _kafka_answers(svc.address)
    parsed = urlparse(svc.address)
    return _redis_answers(parsed.hostname or "127.0.0.1", parsed.port or 6379)


@dataclass(frozen=True)
class Status:
    name: str
    address: str
    managed: str  # "local (pid N)", "external" or "not running"
    answering: bool


def status() -> list[Status]:
    """What runs where: each service's address, who manages it, whether it answers."""
    recorded = _load()
    rows = []
    for name, default in (("kafka", DEFAULT_KAFKA), ("redis", DEFAULT_REDIS)):
        env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS" if name == "kafka" else "REDIS_URL")
        svc = recorded.get(name)
        if env:
            svc, managed = Service(name, env), "external"
        elif svc is not None and svc.ours():
            managed = f"local (pid {svc.pid}{', SASL_SSL' if svc.secure else ''})"
        else:
            svc, managed = Service(name, default), "not running"
        rows.append(Status(name, svc.address, managed, _reachable(svc)))
    return rows
