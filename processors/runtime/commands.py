"""Operator commands at the trust boundary: the processors' guard, and the one way to issue a command.

`CommandGuard` screens the `OperatorCommand`s of a batch before any step sees them: the pure
`signing.check_command` (signed by a trusted key, fresh by the broker's timestamp), then the
nonce, which each processor remembers in Redis with the position (topic:partition:offset) of
the message that first carried it. The same message redelivered is the same command; the same
nonce at any other position is a replay. A nonce is kept as long as its command could still
pass the freshness check, so a replay is caught for as long as it could do harm.

`issue_command` is what `chorus command` (and an HTTP control plane) calls: sign with the
operator's key, publish to `immune.commands`, wait for the broker's acknowledgement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis
from confluent_kafka import Producer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas import COMMANDS, PARTITIONER, Event, OperatorCommand, encode

from . import metrics as m
from .errors import BrokerUnavailable, KeyFileError, StateUnavailable
from .keys import nonce_key
from .security import client_config
from .settings import Settings
from .signing import check_command, load_private_key, load_public_keys, sign_command

log = logging.getLogger(__name__)

# Keep the nonce if unseen, and answer which message holds it.
_CLAIM_LUA = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""
# Nonces outlive their command's freshness window by this margin (Redis expiry is wall-clock).
NONCE_MARGIN_S = 60


class CommandGuard:
    """Refuses unsigned, forged, untrusted, stale and replayed operator commands for one processor."""

    def __init__(self, processor: str, client: aioredis.Redis, settings: Settings) -> None:
        self._processor = processor
        self._redis = client
        self._trusted = load_public_keys(settings.operator_public_keys)
        self._max_age = settings.command_max_age_s
        # The same bound as every event's event time at ingress (a command is dated by its signer's clock).
        self._max_ahead = settings.max_clock_skew_s
        self._ttl = int(settings.command_max_age_s + settings.max_clock_skew_s) + NONCE_MARGIN_S
        self._claim = client.register_script(_CLAIM_LUA)
        if not self._trusted:
            log.warning(
                "no trusted operator keys (CHORUS_OPERATOR_PUBLIC_KEYS): every operator command will be refused",
                extra={"processor": processor},
            )
        else:
            log.info("trusted operator keys", extra={"processor": processor, "key_ids": sorted(self._trusted)})

    async def screen(self, items: Sequence[tuple[str, int, int, float | None, Event]]) -> list[str | None]:
        """Per item (topic, partition, offset, broker time, event): why it is refused, or None.

        Events other than operator commands pass. Raises StateUnavailable when Redis fails (retried).
        """
        reasons: list[str | None] = [None] * len(items)
        codes: list[str | None] = [None] * len(items)
        claims: list[tuple[int, str, str]] = []
        for index, (topic, partition, offset, broker_time, event) in enumerate(items):
            if not isinstance(event, OperatorCommand):
                continue
            verdict = check_command(
                event, self._trusted, broker_time, max_age_s=self._max_age, max_ahead_s=self._max_ahead
            )
            if verdict.accepted:
                assert event.nonce is not None
                claims.append((index, nonce_key(self._processor, event.run_id, event.nonce), f"{topic}:{partition}:{offset}"))
            else:
                reasons[index], codes[index] = verdict.reason, verdict.code
        if claims:
            holders = await self._claim_all(claims)
            for (index, _key, position), holder in zip(claims, holders, strict=True):
                if holder != position:
                    reasons[index] = f"replayed: its nonce was first seen at {holder}"
                    codes[index] = "replayed"
        for (_t, _p, _o, _ts, event), code, reason in zip(items, codes, reasons, strict=True):
            if isinstance(event, OperatorCommand):
                self._count(event, code, reason)
        return reasons

    async def _claim_all(self, claims: Sequence[tuple[int, str, str]]) -> list[str]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for _index, key, position in claims:
                    await self._claim(keys=[key], args=[position, self._ttl], client=pipe)
                rows = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StateUnavailable(f"redis nonce check failed: {exc!r}") from exc
        return [r.decode() if isinstance(r, bytes) else str(r) for r in rows]

    def _count(self, command: OperatorCommand, code: str | None, reason: str | None) -> None:
        if code is None:
            m.COMMANDS_ACCEPTED.labels(self._processor, command.command).inc()
            return
        m.COMMANDS_REFUSED.labels(self._processor, code).inc()
        log.warning(
            "operator command refused",
            extra={"processor": self._processor, "agent_id": command.agent_id, "command": command.command, "reason": reason},
        )


def issue_command(
    settings: Settings,
    *,
    agent_id: str,
    command: str,
    reason: str,
    operator: str,
    trust: float | None = None,
    run_id: str | None = None,
    timeout_s: float = 15.0,
) -> OperatorCommand:
    """Sign a command with `settings.operator_key` and publish it; returns once the broker has it.

    Raises KeyFileError (no or bad key), pydantic's ValidationError (a bad field) or
    BrokerUnavailable (not acknowledged in time).
    """
    if not settings.operator_key:
        raise KeyFileError("no operator key: set CHORUS_OPERATOR_KEY to the private key file (`chorus keys generate`)")
    signed = sign_command(
        load_private_key(settings.operator_key),
        agent_id=agent_id,
        command=command,
        operator=operator,
        at=datetime.now(UTC),
        reason=reason,
        trust=trust,
        run_id=run_id or settings.run_id,
    )
    publish(settings, signed, timeout_s=timeout_s)
    return signed


# One producer per client configuration and process: an idempotent producer's start-up (its
# producer id) costs ~0.5 s, which a long-running issuer (the HTTP API) should pay once, not per command.
_PRODUCERS: dict[tuple[tuple[str, str], ...], Producer] = {}
_PRODUCERS_LOCK = threading.Lock()


def _producer(config: dict) -> Producer:
    key = tuple(sorted((k, str(v)) for k, v in config.items()))
    with _PRODUCERS_LOCK:
        if key not in _PRODUCERS:
            _PRODUCERS[key] = Producer({**config, "partitioner": PARTITIONER, "enable.idempotence": True})
        return _PRODUCERS[key]


def publish(settings: Settings, command: OperatorCommand, *, timeout_s: float = 15.0) -> None:
    """Produce one command to `immune.commands` and wait for its acknowledgement."""
    producer = _producer(client_config(settings))
    errors: list[str] = []
    producer.produce(
        COMMANDS.name,
        encode(command),
        COMMANDS.key_of(command),
        on_delivery=lambda err, _msg: errors.append(str(err)) if err is not None else None,
    )
    left = producer.flush(timeout_s)
    if left or errors:
        raise BrokerUnavailable(
            f"command not acknowledged by {settings.kafka_bootstrap_servers}: {errors[0] if errors else 'timed out'}"
        )

