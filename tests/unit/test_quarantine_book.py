"""The quarantine book: when agents are held and released, the fleet cap, the gate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.quarantine import QuarantineBook, QuarantinePolicy
from processors.quarantine.step import (
    RECENT_IDS,
    AgentRecord,
    FleetHeader,
    header_book,
    parts_of,
    step,
    subject_of,
)
from processors.runtime import Output
from schemas import (
    ADMITTED,
    QUARANTINE,
    AffectedAgent,
    Anomaly,
    ConflictPrediction,
    Event,
    Intention,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "run"
POLICY = QuarantinePolicy(
    base_term_s=10, term_multiplier=2, max_term_s=100, fleet_cap=0.2, active_window_s=60, release_on_recovery=False
)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def intention(n: int, agent: str, t: float) -> Intention:
    return Intention(
        event_id=f"i{n}",
        occurred_at=at(t),
        producer="sim",
        run_id=RUN,
        agent_id=agent,
        action="acquire",
        resource="gpu",
        amount=1.0,
    )


def trust(n: int, agent: str, t: float, after: float, before: float = 100.0) -> TrustChange:
    return TrustChange(
        event_id=f"t{n}",
        occurred_at=at(t),
        producer="trust",
        run_id=RUN,
        agent_id=agent,
        before=before,
        after=after,
        reason="anomaly",
    )


def conflict(n: int, agent: str | None, t: float, risk: float, source: str = "fast_path") -> ConflictPrediction:
    return ConflictPrediction(
        event_id=f"c{n}",
        occurred_at=at(t),
        producer="conflict",
        run_id=RUN,
        resource="gpu",
        window_start=at(t - 5),
        window_end=at(t),
        capacity=10,
        demand=20,
        risk=risk,
        confidence=0.9,
        failure_mode="hoarding",
        most_aggressive=agent,
        source=source,
    )


def anomaly(n: int, agent: str, t: float, severity: str) -> Anomaly:
    return Anomaly(
        event_id=f"a{n}",
        occurred_at=at(t),
        producer="baseline",
        run_id=RUN,
        agent_id=agent,
        metric="latency_ms",
        value=900,
        mean=100,
        stddev=10,
        zscore=80,
        severity=severity,
        sustained_samples=3,
    )


def command(n: int, agent: str, t: float, cmd: str) -> OperatorCommand:
    return OperatorCommand(
        event_id=f"o{n}", occurred_at=at(t), producer="cli", run_id=RUN, agent_id=agent, command=cmd, operator="ops"
    )


def fleet_book(agents: int = 10, policy: QuarantinePolicy = POLICY) -> QuarantineBook:
    book = QuarantineBook(policy, RUN)
    for i in range(agents):
        book.handle(intention(10_000 + i, f"a{i}", 0.0))
    return book


def decisions(book: QuarantineBook, *events: Event) -> list[QuarantineDecision]:
    return [d for e in events for d in book.handle(e).decisions]


# --- examples ---------------------------------------------------------------------------


def test_trust_below_30_quarantines_with_a_term_from_the_event_time() -> None:
    book = fleet_book()
    [d] = decisions(book, trust(1, "a1", 5, 29.0))
    assert (d.action, d.reason, d.until, d.causation_ids, d.offense_count) == (
        "quarantine",
        "low_trust",
        at(15),
        ("t1",),
        1,
    )


def test_trust_at_30_is_not_enough_to_quarantine() -> None:
    assert decisions(fleet_book(), trust(1, "a1", 5, 30.0)) == []


def test_a_high_risk_conflict_quarantines_its_most_aggressive_agent_only() -> None:
    book = fleet_book()
    [d] = decisions(book, conflict(1, "a3", 5, 0.71))
    assert (d.agent_id, d.reason, d.causation_ids) == ("a3", "conflict_aggressor", ("c1",))
    assert decisions(book, conflict(2, "a4", 6, 0.7)) == []  # 0.7 is not above 0.7
    assert decisions(book, conflict(3, "a4", 6, 0.9, source="gemini")) == []


def test_a_critical_anomaly_quarantines_and_a_high_one_does_not() -> None:
    book = fleet_book()
    assert decisions(book, anomaly(1, "a1", 5, "high")) == []
    [d] = decisions(book, anomaly(2, "a1", 6, "critical"))
    assert d.reason == "critical_anomaly"


def test_the_gate_holds_a_quarantined_agents_intentions_and_passes_the_others() -> None:
    book = fleet_book()
    decisions(book, trust(1, "a1", 5, 10.0))
    assert book.handle(intention(1, "a1", 6)).admitted is False
    assert book.handle(intention(2, "a2", 6)).admitted is True


def test_expiry_releases_on_event_time_only_when_trust_has_recovered() -> None:
    book = fleet_book()
    decisions(book, trust(1, "a1", 5, 10.0))  # held until 15
    assert decisions(book, intention(1, "a2", 20)) == []  # expired, but trust 10 < 50
    assert book.handle(intention(2, "a1", 21)).admitted is False
    [d] = decisions(book, trust(2, "a1", 22, 55.0, before=10.0))
    assert (d.action, d.reason, d.causation_ids) == ("release", "term_expired", ("t2",))
    assert book.handle(intention(3, "a1", 23)).admitted is True


def test_a_recovered_agent_is_released_when_event_time_passes_its_term() -> None:
    book = fleet_book()
    [q] = decisions(book, conflict(1, "a1", 5, 0.9))  # trust stays 100
    assert decisions(book, intention(1, "a2", 14.9)) == []
    [d] = decisions(book, intention(2, "a2", 15.1))
    assert (d.agent_id, d.action, d.reason, d.occurred_at, d.causation_ids) == (
        "a1",
        "release",
        "term_expired",
        at(15),
        (q.event_id,),
    )


def test_repeat_offenders_get_longer_terms_up_to_the_maximum() -> None:
    book = fleet_book()
    terms = []
    t = 5.0
    for n in range(6):
        [q] = decisions(book, conflict(n, "a1", t, 0.9))
        terms.append((q.until - q.occurred_at).total_seconds())
        t = (q.until - T0).total_seconds() + 1
        for i in range(10):  # the fleet stays active; event time passes the term
            book.handle(intention(100 * n + i, f"a{i}", t))
        t += 1
    assert terms == [10, 20, 40, 80, 100, 100]


def test_past_the_fleet_cap_policy_only_proposes_a_pending_quarantine() -> None:
    book = fleet_book(10)  # cap: 2 of 10
    decisions(book, trust(1, "a1", 5, 10.0), trust(2, "a2", 5, 10.0))
    [d] = decisions(book, trust(3, "a3", 5, 10.0))
    assert d.action == "pending_approval" and "cap" in d.detail
    assert book.handle(intention(1, "a3", 6)).admitted is True
    assert book.quarantined() == 2


def test_an_operator_approves_or_rejects_a_pending_quarantine() -> None:
    book = fleet_book(10)
    decisions(book, trust(1, "a1", 5, 10.0), trust(2, "a2", 5, 10.0), trust(3, "a3", 5, 10.0), trust(4, "a4", 5, 10.0))
    [approved] = decisions(book, command(1, "a3", 6, "approve"))
    assert (approved.action, approved.reason, approved.causation_ids) == ("quarantine", "low_trust", ("o1",))
    [rejected] = decisions(book, command(2, "a4", 6, "reject"))
    assert (rejected.action, rejected.reason) == ("release", "operator")
    assert book.agent("a4").status == "free"


def test_operator_quarantine_ignores_the_cap_and_operator_release_ignores_trust() -> None:
    book = fleet_book(3)  # policy cap: 0 agents
    assert [d.action for d in decisions(book, trust(1, "a1", 5, 10.0))] == ["pending_approval"]
    [q] = decisions(book, command(1, "a2", 5, "quarantine"))
    assert q.action == "quarantine" and q.until is None
    [r] = decisions(book, command(2, "a2", 6, "release"))
    assert r.action == "release"


def test_an_operator_held_agent_is_not_released_by_time() -> None:
    book = fleet_book()
    decisions(book, command(1, "a1", 5, "quarantine"))
    assert decisions(book, intention(1, "a2", 10_000)) == []


# --- properties ---------------------------------------------------------------------------

AGENTS = [f"a{i}" for i in range(8)]


@st.composite
def streams(draw) -> list[Event]:
    n = draw(st.integers(1, 80))
    t = 0.0
    out: list[Event] = []
    for k in range(n):
        t += draw(st.floats(0, 8))
        agent = draw(st.sampled_from(AGENTS))
        kind = draw(st.sampled_from(["intention"] * 4 + ["trust", "trust", "conflict", "anomaly", "command"]))
        if kind == "intention":
            out.append(intention(k, agent, t))
        elif kind == "trust":
            out.append(trust(k, agent, t, draw(st.floats(0, 100))))
        elif kind == "conflict":
            out.append(conflict(k, draw(st.one_of(st.none(), st.just(agent))), t, draw(st.floats(0, 1))))
        elif kind == "anomaly":
            out.append(anomaly(k, agent, t, draw(st.sampled_from(["low", "medium", "high", "critical"]))))
        else:
            out.append(command(k, agent, t, draw(st.sampled_from(["quarantine", "release", "approve", "reject"]))))
    return out


policies = st.builds(
    QuarantinePolicy,
    base_term_s=st.floats(1, 30),
    term_multiplier=st.floats(1, 3),
    max_term_s=st.floats(30, 200),
    fleet_cap=st.sampled_from([0.0, 0.1, 0.2, 0.34, 0.5, 1.0]),
    active_window_s=st.floats(5, 200),
    release_on_recovery=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(streams(), policies)
def test_no_intention_of_an_agent_is_admitted_between_its_quarantine_and_its_release(events, policy) -> None:
    book = QuarantineBook(policy, RUN)
    held: set[str] = set()
    for e in events:
        verdict = book.handle(e)
        if isinstance(e, Intention):
            # Expiry releases due at this event time come before the intention is gated.
            for d in verdict.decisions:
                held.discard(d.agent_id)
            assert verdict.admitted == (e.agent_id not in held)
        for d in verdict.decisions:
            if d.action == "quarantine":
                held.add(d.agent_id)
            elif d.action == "release":
                held.discard(d.agent_id)


@settings(max_examples=200, deadline=None)
@given(streams(), policies)
def test_policy_never_holds_more_than_the_capped_share_of_the_active_fleet(events, policy) -> None:
    book = QuarantineBook(policy, RUN)
    for e in events:
        for d in book.handle(e).decisions:
            if d.action == "quarantine" and d.reason not in ("operator",) and not isinstance(e, OperatorCommand):
                assert book.quarantined() <= policy.cap(book.active())


@settings(max_examples=200, deadline=None)
@given(streams(), policies)
def test_expiry_releases_only_agents_whose_term_is_over_and_whose_trust_recovered(events, policy) -> None:
    book = QuarantineBook(policy, RUN)
    for e in events:
        before = dict(book.agents)
        for d in book.handle(e).decisions:
            if d.reason == "term_expired":
                held = before[d.agent_id]
                assert held.status == "quarantined" and held.until is not None and held.until <= e.occurred_at
                assert d.trust is not None and d.trust >= policy.release_trust


class StoredBook:
    """The step as the runtime drives it: the header and the agent records kept as Redis keeps them
    (JSON), and only the records a batch's events name loaded into it."""

    def __init__(self, policy: QuarantinePolicy) -> None:
        self.policy = policy
        self.header: bytes | None = None
        self.parts: dict[str, bytes] = {}

    def run(self, batch: Sequence[Event]) -> list[Output]:
        named = {a for e in batch for a in parts_of(e)}
        header = FleetHeader.model_validate_json(self.header) if self.header else None
        result = step("fleet", header, batch, {a: self.parts[a] for a in named if a in self.parts}, self.policy)
        if result.state is not None:
            self.header = result.state.model_dump_json().encode()
        self.parts.update((a, v.encode()) for a, v in result.parts.items())
        return list(result.outputs)

    def fleet(self) -> dict[str, AgentRecord]:
        """Every agent as stored: its record, or the header's copy while it is held or pending."""
        header = FleetHeader.model_validate_json(self.header) if self.header else FleetHeader()
        return {**{a: AgentRecord.model_validate_json(v) for a, v in self.parts.items()}, **header.held}


def batches(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    points = sorted({c % (len(events) + 1) for c in cuts} | {0, len(events)})
    return [events[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def verdicts(outputs: Sequence[Output]) -> tuple[list[Event], list[str]]:
    return [o.event for o in outputs if o.topic is QUARANTINE], [o.event.event_id for o in outputs if o.topic is ADMITTED]


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.lists(st.integers(0, 80), max_size=6))
def test_resuming_from_the_stored_book_gives_the_same_decisions_as_running_straight_through(
    events, policy, cuts
) -> None:
    straight = QuarantineBook(policy, RUN)
    expected: tuple[list[Event], list[str]] = ([], [])
    for e in events:
        verdict = straight.handle(e)
        expected[0].extend(verdict.decisions)
        if verdict.admitted:
            expected[1].append(e.event_id)
    stored = StoredBook(policy)
    got = verdicts([o for batch in batches(events, cuts) for o in stored.run(batch)])
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.lists(st.integers(0, 80), max_size=6))
def test_the_stored_fleet_counters_equal_a_count_over_every_agents_record(events, policy, cuts) -> None:
    """The cap is exact: the header's active count is what counting every stored agent gives."""
    stored = StoredBook(policy)
    for batch in batches(events, cuts):
        stored.run(batch)
        header = FleetHeader.model_validate_json(stored.header) if stored.header else FleetHeader()
        if header.watermark is None:
            continue
        first = math.floor(header.watermark.timestamp() - policy.active_window_s)
        counted = sum(
            1
            for r in stored.fleet().values()
            if (r.seen is not None and math.floor(r.seen) >= first) or r.status != "free"
        )
        assert header_book(header, policy, RUN).active() == counted


@settings(max_examples=150, deadline=None)
@given(streams(), policies, st.lists(st.integers(0, 80), max_size=6), st.data())
def test_an_intention_re_sent_by_its_producer_gets_no_second_verdict_however_late(events, policy, cuts, data) -> None:
    """Same id at a new offset, any number of other agents' events later (the runtime's id window
    covers the last 32 events of the whole fleet; the book's covers each agent's own)."""
    intentions = [i for i, e in enumerate(events) if isinstance(e, Intention)]
    if not intentions:
        return
    original = data.draw(st.sampled_from(intentions))
    later = data.draw(st.integers(original + 1, len(events)))
    resent = [*events[:later], events[original], *events[later:]]
    # fewer events of the same agent in between than its id window holds
    between = [e for e in events[original + 1 : later] if subject_of(e) == events[original].agent_id]
    if len(between) >= RECENT_IDS - 1:
        return
    once, twice = StoredBook(policy), StoredBook(policy)
    assert verdicts([o for b in batches(resent, cuts) for o in twice.run(b)]) == verdicts(
        [o for b in batches(events, cuts) for o in once.run(b)]
    )


@settings(max_examples=100, deadline=None)
@given(streams(), policies)
def test_a_redelivered_policy_event_decides_nothing_new(events, policy) -> None:
    book = QuarantineBook(policy, RUN)
    for e in events:
        book.handle(e)
        if isinstance(e, (TrustChange, ConflictPrediction, Anomaly)):
            assert book.handle(e).decisions == ()


@st.composite
def late_streams(draw) -> list[Event]:
    """Like `streams`, but policy events reach the book late: their event time lags the intentions
    already gated (a conflict comes through the conflict processor's windows, trust through trust)."""
    n = draw(st.integers(1, 80))
    t = 0.0
    out: list[Event] = []
    for k in range(n):
        t += draw(st.floats(0, 3))
        agent = draw(st.sampled_from(AGENTS[:3]))
        lag = draw(st.floats(0, 10))
        kind = draw(st.sampled_from(["intention"] * 4 + ["trust", "conflict", "anomaly"]))
        if kind == "intention":
            out.append(intention(k, agent, t))
        elif kind == "trust":
            out.append(trust(k, agent, max(0.0, t - lag), draw(st.floats(0, 100))))
        elif kind == "conflict":
            out.append(conflict(k, agent, max(0.0, t - lag), draw(st.floats(0, 1))))
        else:
            out.append(anomaly(k, agent, max(0.0, t - lag), draw(st.sampled_from(["high", "critical"]))))
    return out


@settings(max_examples=200, deadline=None)
@given(late_streams(), policies)
def test_no_admitted_intention_happened_after_its_agents_quarantine_in_event_time(events, policy) -> None:
    # The gate's promise in event time, as `chorus eval` counts leaks: a quarantine decided on a
    # late cause takes effect no earlier than the agent's last intention the gate let through.
    book = QuarantineBook(policy, RUN)
    admitted: dict[str, list[datetime]] = {}
    for e in events:
        verdict = book.handle(e)
        if verdict.admitted:
            admitted.setdefault(e.agent_id, []).append(e.occurred_at)  # type: ignore[attr-defined]
        for d in verdict.decisions:
            if d.action == "quarantine":
                assert all(seen <= d.occurred_at for seen in admitted.get(d.agent_id, []))
                assert d.until is not None and d.until > d.occurred_at


def test_a_late_conflict_quarantines_from_the_agents_last_admitted_intention_not_from_its_cause() -> None:
    book = fleet_book()
    book.handle(intention(1, "a1", 24.0))
    (d,) = decisions(book, conflict(2, "a1", 20.0, 0.9))
    assert d.action == "quarantine" and d.occurred_at == at(24.0)
    assert d.until == at(24.0) + POLICY.term(1)


def test_a_conflict_before_any_intention_counts_its_claimants_in_the_fleet_the_cap_is_a_share_of() -> None:
    # At start-up the conflict can reach the book before the claimants' own intentions do.
    claimants = [f"a{i}" for i in range(10)]
    early = conflict(1, "a0", 5.0, 0.9).model_copy(
        update={
            "affected": tuple(
                AffectedAgent(agent_id=a, demand=1, share=0.1, fair_share=0.1, priority=5, aggressiveness=0.0)
                for a in claimants
            )
        }
    )
    book = QuarantineBook(POLICY, RUN)
    (d,) = decisions(book, early)
    assert (d.agent_id, d.action) == ("a0", "quarantine")
    assert book.active() == len(claimants)
