"""The operator surface's pure parts: cause chains, an agent's story, the fleet's status, the
partitioner the readers rely on, write rate limits and token roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from chorus import views
from chorus.api.auth import Auth
from chorus.api.ratelimit import RateLimiter
from chorus.ledger import Ledger, partition_of
from processors.runtime.settings import ApiToken
from schemas import Anomaly, ConflictPrediction, QuarantineDecision, TrustChange

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "r1"


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def anomaly(eid: str, agent: str, s: float, causes=("v1",)) -> Anomaly:
    return Anomaly(event_id=eid, occurred_at=at(s), run_id=RUN, causation_ids=causes, producer="baseline",
                   agent_id=agent, metric="cpu", value=0.9, mean=0.2, stddev=0.05, zscore=14, severity="high",
                   sustained_samples=3)


def trust(eid: str, agent: str, s: float, before: float, after: float, cause: str) -> TrustChange:
    return TrustChange(event_id=eid, occurred_at=at(s), run_id=RUN, causation_ids=(cause,), producer="trust",
                       agent_id=agent, before=before, after=after, reason="anomaly")


def decision(eid: str, agent: str, s: float, action: str, cause: str) -> QuarantineDecision:
    return QuarantineDecision(event_id=eid, occurred_at=at(s), run_id=RUN, causation_ids=(cause,),
                              producer="quarantine", agent_id=agent, action=action, reason="low_trust",
                              until=at(s + 30) if action == "quarantine" else None)


def ledger_of(*events) -> Ledger:
    ledger = Ledger(RUN)
    for i, e in enumerate(events):
        ledger.add("t", 0, i, 1000 + i, e)
    return ledger


# Kafka's own test vectors for its murmur2 (clients/src/test/.../UtilsTest.java): the readers find an
# agent's partition with it, so it must place keys exactly as the producers' murmur2 partitioner does.
@pytest.mark.parametrize(("key", "expected"), [
    ("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),
])
def test_murmur2_matches_kafka(key: str, expected: int) -> None:
    from schemas import murmur2

    assert murmur2(key.encode()) == expected & 0xFFFFFFFF
    assert partition_of(key, 8) == (expected & 0x7FFFFFFF) % 8


def test_cause_chain_goes_down_to_inputs_and_names_what_it_could_not_find() -> None:
    ledger = ledger_of(anomaly("a1", "x", 1), trust("t1", "x", 1, 100, 25, "a1"), decision("d1", "x", 1, "quarantine", "t1"))
    lookup = lambda i: ledger.by_id[i].event if i in ledger.by_id else None  # noqa: E731
    tree = views.cause_tree(ledger.by_id["d1"].event, lookup)
    assert [tree.event_type, tree.causes[0].event_type, tree.causes[0].causes[0].event_type] == [
        "quarantine_decision", "trust_change", "anomaly"]
    leaf = tree.causes[0].causes[0].causes[0]
    assert (leaf.event_id, leaf.event_type) == ("v1", "input")
    assert views.missing_causes([ledger.by_id["d1"].event], lookup) == {"v1"}


def test_cause_chain_shows_the_first_causes_and_counts_the_rest() -> None:
    causes = tuple(f"i{n}" for n in range(10))
    conflict = ConflictPrediction(event_id="c1", occurred_at=at(1), run_id=RUN, causation_ids=causes, producer="conflict",
                                  resource="gpu", window_start=at(0), window_end=at(5), capacity=10, demand=50, risk=0.9,
                                  confidence=0.9, failure_mode="hoarding", most_aggressive="x")
    tree = views.cause_tree(conflict, lambda _i: None)
    assert [c.event_id for c in tree.causes] == ["i0", "i1", "i2"]
    assert tree.more_causes == 7


def test_explain_keeps_processing_order_of_changes_at_the_same_time_and_merges_stored_history() -> None:
    stored = [trust("t1", "x", 5, 100, 90, "a"), trust("t2", "x", 5, 90, 70, "b")]  # same event time
    ledger = ledger_of(trust("t2", "x", 5, 90, 70, "b"), trust("t3", "x", 6, 70, 20, "c"),
                       decision("d1", "x", 6, "quarantine", "t3"))
    story = views.explain(RUN, "x", ledger.of_agent("x"), stored, lambda _i: None, score=None)
    assert [p.event_id for p in story.trust_history] == ["t1", "t2", "t3"]
    assert all(a.after == b.before for a, b in zip(story.trust_history, story.trust_history[1:], strict=False))
    assert (story.trust, story.level, story.status) == (20, "quarantine", "quarantined")
    assert story.decisions[0].chain.causes[0].event_id == "t3"


def test_status_lists_held_and_pending_from_each_agents_latest_decision() -> None:
    ledger = ledger_of(
        decision("d1", "a", 1, "quarantine", "x"), decision("d2", "b", 2, "pending_approval", "y"),
        decision("d3", "c", 3, "quarantine", "z"), decision("d4", "c", 40, "release", "d3"),
        anomaly("an1", "a", 100), anomaly("an0", "a", 10),
        decision("d5", "e", 5000, "release", "cmd"),  # caused by an operator: dated by the signer's clock
    )
    s = views.status(RUN, ledger.snapshot(), {"a": 10.0, "b": 45.0, "c": 80.0, "d": 100.0}, ledger.decision_state(), [])
    assert [h.agent_id for h in s.quarantined] == ["a"]
    assert [(h.agent_id, h.decision_id) for h in s.pending] == [("b", "d2")]
    assert s.agents_seen == 5 and s.warning == 1
    assert s.anomalies_last_minute == 1  # event time: the minute before the newest event (t=100)
    assert s.as_of == at(100)
    assert sum(s.trust_buckets.values()) == 4 and s.trust_buckets["90-100"] == 1
    assert s.ledger_seq == 7
    assert [p.state for p in s.processors] == ["absent"] * 5


@given(st.lists(st.floats(min_value=0, max_value=100), max_size=50))
def test_trust_buckets_count_every_score_once(scores: list[float]) -> None:
    assert sum(views.trust_buckets(scores).values()) == len(scores)


def test_a_duplicate_event_is_kept_once_and_feed_order_is_sequence_order() -> None:
    ledger = ledger_of(anomaly("a1", "x", 1), anomaly("a2", "x", 2))
    assert ledger.add("t", 0, 9, 0, anomaly("a1", "x", 1)) is None
    assert [r.seq for r in ledger.since(0)] == [1, 2] and [r.seq for r in ledger.since(1)] == [2]


def test_rate_limiter_allows_a_burst_then_refills_per_subject() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=1.0, burst=2, clock=lambda: now[0])
    limiter.check("alice")
    limiter.check("alice")
    with pytest.raises(HTTPException) as refused:
        limiter.check("alice")
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"] == "1"
    limiter.check("bob")  # another subject has its own bucket
    now[0] = 1.0
    limiter.check("alice")


def _request(headers: dict[str, str], query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "query_string": query.encode(), "method": "GET", "path": "/"})


def test_tokens_have_roles() -> None:
    auth = Auth({"r": ApiToken(subject="viewer", role="read"), "o": ApiToken(subject="ops", role="operate")})
    assert auth.require("operate")(_request({"Authorization": "Bearer o"})).subject == "ops"
    assert auth.require("read")(_request({"Authorization": "Bearer o"})).role == "operate"
    for headers, code in (({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Bearer r"}, 403)):
        with pytest.raises(HTTPException) as refused:
            auth.require("operate")(_request(headers))
        assert refused.value.status_code == code
    assert auth.require("read", allow_query=True)(_request({}, "access_token=r")).subject == "viewer"
    with pytest.raises(HTTPException):
        auth.require("read")(_request({}, "access_token=r"))  # only where a browser cannot send headers
