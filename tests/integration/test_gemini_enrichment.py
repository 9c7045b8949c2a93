"""Gemini enrichment through the real google-genai SDK against a local fake Gemini server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from google import genai
from google.genai import types

from processors.conflict import (
    CircuitBreaker,
    ConflictAnalysis,
    Enrichments,
    GeminiAnalyst,
    GeminiUnavailable,
    Window,
    predict,
)
from processors.conflict import metrics as m
from processors.runtime import Settings
from schemas import ConflictPrediction, Intention
from tests.fakes import FakeGemini, Reply

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = {
    "summary": "hog claims most of gpu at top priority",
    "root_cause": "hoarding by hog",
    "failure_mode": "hoarding",
    "recommended_actions": ["throttle hog", "quarantine hog"],
    "confidence": 0.9,
}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake():
    with FakeGemini(default=Reply.json(GOOD)) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def prediction(resource: str = "gpu", hog: str = "hog") -> ConflictPrediction:
    claims = [
        Intention(
            event_id=f"{resource}-{hog}-{n}",
            occurred_at=T0 + timedelta(seconds=n * 0.1),
            producer="sim",
            agent_id=hog if n % 2 else f"a{n}",
            action="acquire",
            resource=resource,
            amount=30 if n % 2 else 2,
            priority=9 if n % 2 else 5,
            hold_s=90 if n % 2 else 2,
        )
        for n in range(10)
    ]
    p = predict(Window("run", resource, T0, T0 + timedelta(seconds=5)), 50.0, claims)
    assert p is not None and p.risk > 0.7
    return p


def analyst(fake: FakeGemini, **kw) -> GeminiAnalyst:
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url))
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("max_backoff_s", 0.02)
    return GeminiAnalyst(client, "gemini-2.5-pro", **kw)


def failures(reason: str) -> float:
    return m.GEMINI_FAILURES.labels(reason)._value.get()


def test_a_structured_answer_becomes_an_analysis_and_asks_with_the_schema(fake: FakeGemini) -> None:
    result = asyncio.run(analyst(fake).analyse(prediction()))
    assert result == ConflictAnalysis(**GOOD)
    [req] = fake.requests
    assert req["path"].endswith("/models/gemini-2.5-pro:generateContent")
    assert req["api_key"] == "test-key"
    config = req["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "recommended_actions" in str(config.get("responseSchema") or config.get("responseJsonSchema"))


def test_an_answer_that_is_not_json_of_the_schema_is_a_failure_not_a_silent_none(fake: FakeGemini) -> None:
    fake.script(Reply(text="I think hog is hoarding {not json"))
    with pytest.raises(GeminiUnavailable) as err:
        asyncio.run(analyst(fake).analyse(prediction()))
    assert err.value.reason == "malformed"


def test_429_and_500_are_retried_with_backoff_until_an_answer_comes(fake: FakeGemini) -> None:
    fake.script(Reply.error(429), Reply.error(500))
    result = asyncio.run(analyst(fake, max_attempts=3).analyse(prediction()))
    assert result.root_cause == "hoarding by hog"
    assert len(fake.requests) == 3


def test_persistent_429_fails_as_rate_limited_after_the_last_attempt(fake: FakeGemini) -> None:
    fake.script(*[Reply.error(429)] * 3)
    with pytest.raises(GeminiUnavailable) as err:
        asyncio.run(analyst(fake, max_attempts=3).analyse(prediction()))
    assert err.value.reason == "rate_limited" and len(fake.requests) == 3


def test_persistent_500_fails_as_server_error(fake: FakeGemini) -> None:
    fake.script(*[Reply.error(500)] * 2)
    with pytest.raises(GeminiUnavailable) as err:
        asyncio.run(analyst(fake, max_attempts=2).analyse(prediction()))
    assert err.value.reason == "server_error" and len(fake.requests) == 2


def test_a_client_error_is_not_retried(fake: FakeGemini) -> None:
    fake.script(Reply.error(400))
    with pytest.raises(GeminiUnavailable) as err:
        asyncio.run(analyst(fake, max_attempts=3).analyse(prediction()))
    assert err.value.reason == "client_error" and len(fake.requests) == 1


def test_a_slow_answer_times_out_and_is_not_retried(fake: FakeGemini) -> None:
    fake.script(Reply(text="{}", delay_s=2.0))
    with pytest.raises(GeminiUnavailable) as err:
        asyncio.run(analyst(fake, timeout_s=0.3, max_attempts=3).analyse(prediction()))
    assert err.value.reason == "timeout" and len(fake.requests) == 1


def test_the_same_situation_is_answered_from_the_cache(fake: FakeGemini) -> None:
    a = analyst(fake)

    async def twice() -> None:
        await a.analyse(prediction())
        await a.analyse(prediction())

    asyncio.run(twice())
    assert len(fake.requests) == 1


def test_the_breaker_opens_on_failures_stops_calling_and_closes_after_a_good_trial(fake: FakeGemini) -> None:
    clock = Clock()
    a = analyst(fake, max_attempts=1, breaker=CircuitBreaker(failures=2, reset_s=30, clock=clock))
    fake.script(Reply.error(500), Reply.error(500))

    async def scenario() -> list[str]:
        seen = []
        for resource in ("r1", "r2", "r3"):
            try:
                await a.analyse(prediction(resource))
                seen.append("ok")
            except GeminiUnavailable as exc:
                seen.append(exc.reason)
        clock.now = 31  # half open: one trial goes through and succeeds
        await a.analyse(prediction("r4"))
        seen.append(a.breaker.state)
        return seen

    assert asyncio.run(scenario()) == ["server_error", "server_error", "breaker_open", "closed"]
    assert len(fake.requests) == 3  # r3 never reached the server


def test_enrichment_publishes_a_new_prediction_caused_by_the_fast_one_without_holding_it(fake: FakeGemini) -> None:
    fake.script(Reply(text=fake.default.text, delay_s=0.3))
    published: list[ConflictPrediction] = []

    async def publish(p: ConflictPrediction) -> None:
        published.append(p)

    async def scenario() -> bool:
        enrich = Enrichments(analyst(fake), min_risk=0.7, max_concurrency=2)
        fast = prediction()
        accepted = enrich.submit(fast, publish)
        assert published == []  # submit returned before Gemini answered
        await enrich.drain()
        return accepted

    assert asyncio.run(scenario())
    [rich] = published
    assert rich.source == "gemini" and rich.causation_ids == (prediction().event_id,)
    assert rich.recommended_actions == ("throttle hog", "quarantine hog")


def test_a_failed_enrichment_publishes_nothing_and_is_counted(fake: FakeGemini) -> None:
    fake.script(Reply(text="not json"))
    before = failures("malformed")
    published: list[ConflictPrediction] = []

    async def publish(p: ConflictPrediction) -> None:
        published.append(p)

    async def scenario() -> None:
        enrich = Enrichments(analyst(fake))
        enrich.submit(prediction(), publish)
        await enrich.drain()

    asyncio.run(scenario())
    assert published == [] and failures("malformed") == before + 1


def test_low_risk_predictions_are_not_sent(fake: FakeGemini) -> None:
    async def scenario() -> bool:
        low = prediction().model_copy(update={"risk": 0.5})
        return Enrichments(analyst(fake), min_risk=0.7).submit(low, lambda p: asyncio.sleep(0))

    assert asyncio.run(scenario()) is False and fake.requests == []


def test_the_analyst_exists_only_with_a_key_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fake: FakeGemini
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert GeminiAnalyst.from_settings(Settings()) is None
    monkeypatch.setenv("GEMINI_API_KEY", "secret-from-env")
    monkeypatch.setenv("CHORUS_GEMINI_BASE_URL", fake.base_url)
    settings = Settings()
    assert "secret-from-env" not in repr(settings) and "secret-from-env" not in str(settings.model_dump())
    a = GeminiAnalyst.from_settings(settings)
    assert a is not None
    asyncio.run(a.analyse(prediction()))
    assert fake.requests[0]["api_key"] == "secret-from-env"
