"""Every read of the processors' Redis layout and of their consumer groups, in one place.

The operator's surface (status, explain, watch, the API) learns *what was decided*
from the decision topics (`chorus.ledger`); this module reads only what the topics do
not carry: which agents exist and their scores now, an agent's stored trust history,
and the processors' consumer groups. A change of a processor's key layout is one edit
here (keys come from `processors.runtime.keys`, never spelled out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runtime.kafka import end_offsets
from processors.runtime.keys import entity_key, history_key
from processors.runtime.security import client_config
from schemas import TrustChange

TRUST = "trust"
PROCESSORS = ("baseline", "trust", "conflict", "quarantine", "healing")  # as chorus.pipeline starts them
_SCAN_COUNT = 1000


class StateReader:
    """Reads one Redis (synchronously: the CLI and the API's worker threads call it)."""

    def __init__(self, redis_url: str) -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)

    def close(self) -> None:
        self._redis.close()

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    def trust_agents(self, run_id: str) -> list[str]:
        """Every agent the trust processor holds a state for in this run (it sees every agent that claims)."""
        prefix = entity_key(TRUST, run_id, "")[:-1]  # 'chorus:trust:{run:'
        agents = set()
        for key in self._redis.scan_iter(match=_glob_escape(prefix) + "*}", count=_SCAN_COUNT):
            name = key.decode() if isinstance(key, bytes) else key
            agents.add(name[len(prefix) : -1])
        return sorted(agents)

    def trust_scores(self, run_id: str, agents: Iterable[str] | None = None) -> dict[str, float]:
        """Current score per agent, from the trust processor's stored state."""
        agents = list(self.trust_agents(run_id) if agents is None else agents)
        with self._redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hget(entity_key(TRUST, run_id, agent), "s")
            rows = pipe.execute()
        scores = {}
        for agent, raw in zip(agents, rows, strict=True):
            if raw:
                scores[agent] = float(json.loads(raw)["score"])
        return scores

    def trust_history(self, run_id: str, agent: str) -> list[TrustChange]:
        """The agent's stored trust changes in processing order (the last CHORUS_HISTORY_CAP of them)."""
        rows = self._redis.lrange(history_key(TRUST, run_id, agent), 0, -1)
        changes = []
        for raw in rows:
            entry = json.loads(raw)
            changes.append(
                TrustChange(
                    event_id=entry["event_id"],
                    occurred_at=entry["occurred_at"],
                    run_id=run_id,
                    causation_ids=tuple(entry["causation_ids"]),
                    producer=TRUST,
                    agent_id=agent,
                    before=entry["before"],
                    after=entry["after"],
                    reason=entry["reason"],
                    detail=entry.get("detail", ""),
                )
            )
        return changes  # RPUSHed in processing order: oldest first


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class GroupView:
    """One processor's consumer group: members and lag per topic."""

    processor: str
    group: str
    replicas: int
    state: str
    lag: dict[str, int]


def processor_groups(bootstrap: str, run_id: str, app_id_suffix: str) -> list[GroupView]:
    """The four processors' groups: `chorus-<name><suffix>`, where a demo run's suffix is `-<run_id>`."""
    admin = AdminClient(client_config(bootstrap=bootstrap))
    candidates = {f"chorus-{name}{app_id_suffix}": name for name in PROCESSORS}
    candidates.update({f"chorus-{name}-{run_id}": name for name in PROCESSORS})
    described = admin.describe_consumer_groups(list(candidates), request_timeout=5)
    views: list[GroupView] = []
    for group, future in described.items():
        try:
            desc = future.result()
        except Exception:  # noqa: BLE001 - a group that does not exist is simply absent
            continue
        state = desc.state.name.lower() if desc.state is not None else "unknown"
        if state == "dead":
            continue
        views.append(GroupView(candidates[group], group, len(desc.members), state, _lag(admin, bootstrap, group)))
    return sorted(views, key=lambda v: PROCESSORS.index(v.processor))


def _lag(admin: AdminClient, bootstrap: str, group: str) -> dict[str, int]:
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=5)[group]
    committed: list[TopicPartition] = future.result().topic_partitions or []
    topics = sorted({tp.topic for tp in committed})
    if not topics:
        return {}
    ends = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(bootstrap, topics)}
    lag: dict[str, int] = dict.fromkeys(topics, 0)
    for tp in committed:
        if tp.offset >= 0:
            lag[tp.topic] += max(0, ends.get((tp.topic, tp.partition), tp.offset) - tp.offset)
    return lag
