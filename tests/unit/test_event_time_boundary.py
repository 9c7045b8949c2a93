"""No event from an agent moves time past its own term: the quarantine book behind the ingress rule.

The book is pure and trusts `occurred_at`; the runtime's ingress rule (processors/runtime/ingress.py)
is what keeps an agent's dates within a bounded skew of the broker's clock. These properties run
the two pure parts together, as the runtime composes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.quarantine import QuarantineBook, QuarantinePolicy
from processors.runtime.ingress import EventTimeRule
from schemas import Event, Intention
from tests.unit.test_quarantine_book import RUN, T0, anomaly, intention, trust

SKEW = 30.0
RULE = EventTimeRule(max_skew_s=SKEW, max_age_s=10 * 365.25 * 86400)
TERM = 300.0  # longer than the skew: an agent must not be able to reach its term's end by lying
# Release by term expiry (CHORUS_QUARANTINE_RELEASE_ON_RECOVERY=false): the rule whose watermark a forged date
# could move. With release on verified recovery, no date releases anyone.
POLICY = QuarantinePolicy(
    base_term_s=TERM, max_term_s=TERM, fleet_cap=0.5, active_window_s=3600, release_on_recovery=False
)
HELD = "a0"
AGENTS = [f"a{i}" for i in range(6)]
LATEST = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)


def dated(event: Event, at: datetime) -> Event:
    return event.model_copy(update={"occurred_at": at})


def held_book() -> tuple[QuarantineBook, datetime]:
    """A fleet of six agents seen at T0; a0 quarantined by a critical anomaly at T0 (term TERM)."""
    book = QuarantineBook(POLICY, RUN)
    for i, agent in enumerate(AGENTS):
        book.handle(intention(90_000 + i, agent, 0.0))
    (decision,) = book.handle(anomaly(90_100, HELD, 0.0, "critical")).decisions
    assert decision.action == "quarantine" and decision.until is not None
    return book, decision.until


# Offsets of occurred_at from the broker time: honest ones, a little ahead, and absurd ones both ways.
offsets = st.one_of(
    st.floats(-120, SKEW),
    st.floats(SKEW, 10 * TERM),
    st.floats(-1e11, 1e11),
    st.sampled_from([float("inf"), float("-inf")]),
)


@st.composite
def attacks(draw) -> list[tuple[float, Event]]:
    """(broker time since T0, event) pairs: the broker's clock only moves forward; dates are anyone's."""
    broker = 0.0
    out: list[tuple[float, Event]] = []
    for k in range(draw(st.integers(1, 40))):
        broker += draw(st.floats(0, 20))
        agent = draw(st.sampled_from([HELD, HELD, *AGENTS]))
        offset = draw(offsets)
        seconds = (T0 + timedelta(seconds=broker)).timestamp() + offset if abs(offset) != float("inf") else offset
        at = min(max(seconds, EARLIEST.timestamp()), LATEST.timestamp())
        kind = draw(st.sampled_from(["intention", "intention", "trust", "anomaly"]))
        if kind == "intention":
            event = intention(k, agent, 0.0)
        elif kind == "trust":
            event = trust(k, agent, 0.0, draw(st.floats(50, 100)))  # never low enough to quarantine anew
        else:
            event = anomaly(k, agent, 0.0, draw(st.sampled_from(["low", "medium", "high"])))
        out.append((broker, dated(event, datetime.fromtimestamp(at, UTC))))
    return out


@settings(max_examples=300, deadline=None)
@given(attacks())
def test_no_event_from_an_agent_moves_time_past_its_own_term(stream) -> None:
    book, until = held_book()
    latest_broker = T0
    for broker_s, event in stream:
        broker = T0 + timedelta(seconds=broker_s)
        latest_broker = max(latest_broker, broker)
        if RULE.judge(event.occurred_at.timestamp(), broker.timestamp()) is not None:
            continue  # dead-lettered at ingress
        verdict = book.handle(event)
        assert book.watermark is not None and book.watermark <= latest_broker + timedelta(seconds=SKEW)
        released = [d for d in verdict.decisions if d.agent_id == HELD and d.action == "release"]
        if released or (isinstance(event, Intention) and event.agent_id == HELD and verdict.admitted):
            # only the broker's clock, within the skew, can end a term: never a date an agent chose
            assert latest_broker + timedelta(seconds=SKEW) >= until


def test_without_the_ingress_rule_one_intention_dated_2100_releases_its_agent_and_passes_the_gate() -> None:
    """Why the rule exists: the book alone believes any date (the property above fails without the rule)."""
    book, _until = held_book()
    verdict = book.handle(dated(intention(1, HELD, 0.0), datetime(2100, 1, 1, tzinfo=UTC)))
    assert verdict.admitted and [d.action for d in verdict.decisions] == ["release"]


def test_behind_the_ingress_rule_the_2100_intention_never_reaches_the_book_and_replays_do() -> None:
    book, _until = held_book()
    broker = T0.timestamp() + 5
    assert RULE.judge(datetime(2100, 1, 1, tzinfo=UTC).timestamp(), broker) == "future"
    # a replay: events from last January with today's broker times still enter
    assert RULE.judge(T0.timestamp(), datetime(2026, 12, 2, tzinfo=UTC).timestamp()) is None
    held = book.handle(dated(intention(2, HELD, 0.0), datetime.fromtimestamp(broker, UTC)))
    assert held.admitted is False and held.decisions == ()


def test_the_conflict_repartition_dead_letters_a_claim_dated_2100_instead_of_forwarding_it() -> None:
    """The windows' watermark is the other exposure: the relay that decodes agent intentions applies the rule."""
    from processors.conflict.topics import CLAIMS
    from processors.runtime import Record
    from processors.runtime.ingress import EventTimeGuard
    from processors.runtime.rekey import _copies
    from schemas import DEADLETTER, INTENTIONS, encode

    guard = EventTimeGuard("conflict-test", RULE)
    broker = T0.timestamp() + 5
    honest = intention(1, "a1", 1.0)
    liar = dated(intention(2, "a1", 0.0), datetime(2100, 1, 1, tzinfo=UTC))

    def relayed(event, offset):  # noqa: ANN001, ANN202 - the conflict processor's re-key relay of one record
        record = Record("agent.intentions", 0, offset, b"a1", encode(event), broker)
        [message] = _copies(record, INTENTIONS, CLAIMS, lambda e: (e.resource,), "conflict", RUN, guard)
        return message

    forwarded, refused = relayed(honest, 1), relayed(liar, 2)
    assert forwarded is not None and forwarded.topic != DEADLETTER.name
    assert refused is not None and refused.topic == DEADLETTER.name and b"ahead of the broker timestamp" in refused.value
