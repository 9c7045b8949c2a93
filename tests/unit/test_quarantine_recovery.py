"""The quarantine's release rule with healing: only a verified recovery of this very quarantine,
or an operator's command, releases an agent — never a term running out on its own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.quarantine import QuarantineBook, QuarantinePolicy
from schemas import Event, HealingOutcome, OperatorCommand
from tests.unit.test_quarantine_book import AGENTS, RUN, anomaly, at, command, conflict, intention, trust

POLICY = QuarantinePolicy(base_term_s=10, fleet_cap=1.0, active_window_s=60)


def outcome(n: int, agent: str, t: float, quarantine_id: str, what: str = "cured") -> HealingOutcome:
    return HealingOutcome(
        event_id=f"h{n}", occurred_at=at(t), producer="healing", run_id=RUN, agent_id=agent,
        condition="resource_hoarding", action="reset_state", outcome=what, attempt=1, diagnosis_id="d",
        quarantine_id=quarantine_id,
    )  # fmt: skip


def test_a_verified_cure_of_the_current_quarantine_releases_and_a_stale_one_does_not() -> None:
    book = QuarantineBook(POLICY, RUN)
    book.handle(intention(1, "a1", 0.0))
    (held,) = book.handle(conflict(2, "a1", 1.0, 0.9)).decisions
    assert held.action == "quarantine"
    assert book.handle(trust(3, "a1", 500.0, 90.0)).decisions == ()  # term long over, trust fine: still held
    assert book.handle(outcome(4, "a1", 501.0, "an-earlier-quarantine")).decisions == ()
    assert book.handle(outcome(5, "a1", 502.0, held.event_id, "failed")).decisions == ()
    (released,) = book.handle(outcome(6, "a1", 503.0, held.event_id)).decisions
    assert (released.action, released.reason, released.causation_ids) == ("release", "recovered", ("h6",))
    assert book.handle(intention(7, "a1", 504.0)).admitted


@st.composite
def streams_with_outcomes(draw) -> list[Event]:
    """Policy events, intentions, commands, and healing outcomes naming real or stale quarantines."""
    n = draw(st.integers(1, 80))
    t, out = 0.0, []
    for k in range(n):
        t += draw(st.floats(0, 30))
        agent = draw(st.sampled_from(AGENTS))
        kind = draw(st.sampled_from(["intention"] * 3 + ["trust", "conflict", "anomaly", "command", "outcome"]))
        if kind == "intention":
            out.append(intention(k, agent, t))
        elif kind == "trust":
            out.append(trust(k, agent, t, draw(st.floats(0, 100))))
        elif kind == "conflict":
            out.append(conflict(k, agent, t, draw(st.floats(0, 1))))
        elif kind == "anomaly":
            out.append(anomaly(k, agent, t, draw(st.sampled_from(["high", "critical"]))))
        elif kind == "command":
            out.append(command(k, agent, t, draw(st.sampled_from(["quarantine", "release", "approve", "reject"]))))
        else:
            out.append(outcome(k, agent, t, "?", draw(st.sampled_from(["cured", "failed", "unverified", "rejected"]))))
    return out


@settings(max_examples=100, deadline=None)
@given(streams_with_outcomes(), st.randoms(use_true_random=False))
def test_no_release_without_a_verified_recovery_or_an_operators_command(events, rnd) -> None:
    book = QuarantineBook(POLICY, RUN)
    for e in events:
        if isinstance(e, HealingOutcome) and rnd.random() < 0.5:
            # Half the outcomes name the agent's current quarantine, as the healer's do.
            e = e.model_copy(update={"quarantine_id": book.agent(e.agent_id).decision_id or "none"})
        before = book.agent(getattr(e, "agent_id", "")) if hasattr(e, "agent_id") else None
        for d in book.handle(e).decisions:
            if d.action != "release":
                continue
            by_operator = isinstance(e, OperatorCommand) and e.command in ("release", "reject")
            by_cure = (
                isinstance(e, HealingOutcome) and e.outcome == "cured" and before is not None
                and e.quarantine_id == before.decision_id
            )  # fmt: skip
            assert by_operator or by_cure, (d.reason, type(e).__name__)
            assert d.reason in ("operator", "recovered")
