"""The Gemini circuit breaker and what an enriched prediction is made of (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.conflict import CircuitBreaker, ConflictAnalysis, Window, enriched, predict, situation
from schemas import Intention


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_refuses_calls() -> None:
    breaker = CircuitBreaker(failures=3, reset_s=10, clock=Clock())
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def test_after_the_reset_time_one_trial_call_closes_or_reopens_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=clock)
    breaker.failure()
    clock.now = 10
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial only
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 20
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _prediction(resource: str = "gpu", shift: int = 0):
    claims = [
        Intention(
            event_id=f"i{n}-{shift}",
            occurred_at=T0 + timedelta(seconds=shift * 5 + n * 0.1),
            producer="sim",
            agent_id="hog" if n % 2 else f"a{n}",
            action="acquire",
            resource=resource,
            amount=30 if n % 2 else 2,
            priority=9 if n % 2 else 5,
            hold_s=90 if n % 2 else 2,
        )
        for n in range(10)
    ]
    start = T0 + timedelta(seconds=shift * 5)
    p = predict(Window("run", resource, start, start + timedelta(seconds=5)), 50.0, claims)
    assert p is not None
    return p


ANALYSIS = ConflictAnalysis(
    summary="hog hoards",
    root_cause="hoarding",
    failure_mode="hoarding",
    recommended_actions=["throttle hog"],
    confidence=0.8,
)


def test_an_enriched_prediction_is_a_new_event_caused_by_the_fast_one() -> None:
    fast = _prediction()
    rich = enriched(fast, ANALYSIS)
    assert rich.event_id != fast.event_id and rich.causation_ids == (fast.event_id,)
    assert (rich.source, rich.recommended_actions) == ("gemini", ("throttle hog",))
    assert "hog hoards" in (rich.analysis or "")
    assert (rich.risk, rich.occurred_at, rich.most_aggressive) == (fast.risk, fast.occurred_at, fast.most_aggressive)
    assert enriched(fast, ANALYSIS).event_id == rich.event_id


def test_the_same_situation_in_another_window_has_the_same_cache_key() -> None:
    assert situation(_prediction(shift=0)) == situation(_prediction(shift=3))
    assert situation(_prediction(resource="gpu")) != situation(_prediction(resource="db"))
