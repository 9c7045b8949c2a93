"""The event-time rule at ingress: nothing a producer writes may move time beyond a bounded skew.

Every watermark in Chorus (the quarantine book's, the conflict windows') is the largest
`occurred_at` seen, and `occurred_at` is written by whoever produced the event: one intention
dated 2100 from a quarantined agent used to expire its own term (and everyone else's), and
an agent dated 9999-12-31 overflowed the book's arithmetic.

The rule, enforced once where records are decoded (the runtime's `BatchRunner`, and the
conflict processor's repartition relay, which decodes agent intentions before its windows
see them): an event whose `occurred_at` is more than `max_skew_s` (`CHORUS_MAX_CLOCK_SKEW_S`,
30 s) ahead of its record's broker timestamp, or more than `max_age_s`
(`CHORUS_MAX_EVENT_AGE_S`, 10 years; 0 = no bound) behind it, is dead-lettered and counted
per agent (`chorus_event_time_rejected{processor,agent,why}`). Derived events take their
times from causes that passed the rule, so they stay within it too.

Dead-letter, not clamp: a clamped time would be one we invent from the broker timestamp,
which differs between the original run and a replay of it, so decisions would stop being a
function of the recorded events; and an event that lies about its time is not evidence we
want to act on. It costs only itself: its neighbours in the batch go on.

Replays keep working: old event times with new broker times are only bounded by `max_age_s`.
A record without a broker timestamp cannot be judged and passes (the confluent engine always
has one). The agent topics use LogAppendTime (the registry), so the broker timestamp there
is the broker's clock, not one the producer chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas import Event

from . import metrics as m

Why = Literal["future", "past"]
OTHER_AGENTS = "_other"


@dataclass(frozen=True)
class EventTimeRule:
    """Pure: may an event dated `occurred_at` (epoch seconds) enter with this broker timestamp?"""

    max_skew_s: float
    max_age_s: float  # 0 = no bound on the past

    def judge(self, occurred_at: float, broker_ts: float | None) -> Why | None:
        if broker_ts is None:
            return None
        ahead = occurred_at - broker_ts
        if ahead > self.max_skew_s:
            return "future"
        if self.max_age_s and -ahead > self.max_age_s:
            return "past"
        return None

    def reason(self, why: Why, occurred_at: float, broker_ts: float) -> str:
        if why == "future":
            return (
                f"event time: occurred_at is {occurred_at - broker_ts:.0f} s ahead of the broker timestamp "
                f"(at most {self.max_skew_s:g} s allowed)"
            )
        return (
            f"event time: occurred_at is {broker_ts - occurred_at:.0f} s before the broker timestamp "
            f"(at most {self.max_age_s:g} s allowed)"
        )


@dataclass
class EventTimeGuard:
    """The rule as a processor applies it: judges an event, counts a rejection per agent.

    Agent ids are attacker-chosen, so the metric's agent label is bounded: the first
    `agent_labels` offenders are named, the rest count under `_other`.
    """

    processor: str
    rule: EventTimeRule
    agent_labels: int = 1000
    _named: set[str] = field(default_factory=set)

    def check(self, event: Event, broker_ts: float | None) -> str | None:
        """None when the event may enter; else the dead letter's error."""
        if broker_ts is None:
            return None
        at = event.occurred_at.timestamp()
        why = self.rule.judge(at, broker_ts)
        if why is None:
            return None
        m.EVENT_TIME_REJECTED.labels(self.processor, self._label(event), why).inc()
        return self.rule.reason(why, at, broker_ts)

    def _label(self, event: Event) -> str:
        agent = getattr(event, "agent_id", None) or event.producer
        if agent in self._named:
            return agent
        if len(self._named) < self.agent_labels:
            self._named.add(agent)
            return agent
        return OTHER_AGENTS
