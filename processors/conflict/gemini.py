"""Gemini enrichment of high-risk conflict predictions, off the hot path.

The fast prediction is published first; `Enrichments.submit` then asks Gemini in the
background (bounded concurrency and queue, per-request timeout, a cache keyed by the
situation, a circuit breaker, retries only on 429 and 5xx with jittered exponential
backoff) and publishes a new ConflictPrediction (source='gemini') caused by the fast
one. Every failure is counted; the fast path never waits and never fails because of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal

from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from processors.runtime import Settings
from schemas import ConflictPrediction, derive_event_id

from . import metrics as m
from .breaker import CircuitBreaker
from .errors import GeminiUnavailable

log = logging.getLogger(__name__)

PRODUCER = "conflict"

SYSTEM_INSTRUCTION = (
    "You are the conflict analyst of Chorus, an immune system for fleets of autonomous AI agents. "
    "You get a predicted conflict over one shared resource in one time window: capacity, demand, "
    "each claimant's share against its fair share, aggressiveness and priority, and a hawk/dove "
    "reading with its mixed Nash equilibrium. Explain briefly what is going on, the likely root "
    "cause, and concrete actions an operator should take. Be specific and terse."
)


class ConflictAnalysis(BaseModel):
    """What Gemini returns (the response schema of the structured output)."""

    summary: str = Field(description="Two or three sentences on what is happening.")
    root_cause: str = Field(description="The most likely cause of the conflict.")
    failure_mode: Literal["none", "contention", "starvation", "deadlock", "hoarding"]
    recommended_actions: list[str] = Field(description="Concrete operator actions, most important first.")
    confidence: float = Field(description="Confidence in this analysis, 0 to 1.")


def situation(prediction: ConflictPrediction) -> str:
    """The prompt's facts, without ids or times, so equal situations share a cache entry."""
    facts = {
        "resource": prediction.resource,
        "capacity": round(prediction.capacity, 1),
        "demand": round(prediction.demand, 1),
        "risk": round(prediction.risk, 2),
        "failure_mode": prediction.failure_mode,
        "most_aggressive": prediction.most_aggressive,
        "claimants": [
            {
                "agent": a.agent_id,
                "share": round(a.share, 2),
                "fair_share": round(a.fair_share, 2),
                "aggressiveness": round(a.aggressiveness, 2),
                "priority": a.priority,
            }
            for a in prediction.affected[:8]
        ],
        "equilibrium": prediction.equilibrium.model_dump(mode="json") if prediction.equilibrium else None,
    }
    return json.dumps(facts, sort_keys=True, separators=(",", ":"))


def enriched(fast: ConflictPrediction, analysis: ConflictAnalysis) -> ConflictPrediction:
    """The new event: the fast prediction's facts, Gemini's reading, caused by the fast one."""
    text = f"{analysis.summary}\nRoot cause: {analysis.root_cause} (confidence {analysis.confidence:.2f})"
    return fast.model_copy(
        update={
            "event_id": derive_event_id(PRODUCER, "gemini", fast.event_id),
            "causation_ids": (fast.event_id,),
            "source": "gemini",
            "analysis": text,
            "recommended_actions": tuple(analysis.recommended_actions) or fast.recommended_actions,
        }
    )


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, genai_errors.APIError) and (exc.code == 429 or 500 <= exc.code < 600)


class GeminiAnalyst:
    """Asks Gemini for one analysis, with timeout, retries, cache and circuit breaker."""

    def __init__(
        self,
        client: genai.Client,
        model: str,
        *,
        timeout_s: float = 20.0,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        cache_size: int = 256,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._cache: OrderedDict[str, ConflictAnalysis] = OrderedDict()
        self._cache_size = cache_size
        self.breaker = breaker or CircuitBreaker(failures=5, reset_s=30.0)

    @classmethod
    def from_settings(cls, settings: Settings) -> GeminiAnalyst | None:
        """The analyst, or None when no GEMINI_API_KEY is configured."""
        if settings.gemini_api_key is None:
            return None
        options = types.HttpOptions(base_url=settings.gemini_base_url) if settings.gemini_base_url else None
        client = genai.Client(api_key=settings.gemini_api_key.get_secret_value(), http_options=options)
        return cls(
            client,
            settings.gemini_model,
            timeout_s=settings.gemini_timeout_s,
            max_attempts=settings.gemini_max_attempts,
            backoff_s=settings.gemini_backoff_s,
            cache_size=settings.gemini_cache_size,
            breaker=CircuitBreaker(settings.gemini_breaker_failures, settings.gemini_breaker_reset_s),
        )

    async def analyse(self, prediction: ConflictPrediction) -> ConflictAnalysis:
        """Gemini's analysis of the situation; GeminiUnavailable(reason) when there is none."""
        key = situation(prediction)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            m.GEMINI_CALLS.labels("cached").inc()
            return cached
        if not self.breaker.allow():
            raise GeminiUnavailable("breaker_open")
        started = time.perf_counter()
        try:
            analysis = await self._ask(key)
        except GeminiUnavailable:
            self.breaker.failure()
            raise
        finally:
            m.GEMINI_SECONDS.observe(time.perf_counter() - started)
            m.GEMINI_BREAKER_OPEN.set(1 if self.breaker.state == "open" else 0)
        self.breaker.success()
        m.GEMINI_BREAKER_OPEN.set(0)
        m.GEMINI_CALLS.labels("ok").inc()
        if self._cache_size:
            self._cache[key] = analysis
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return analysis

    async def _ask(self, facts: str) -> ConflictAnalysis:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(self._max_attempts),
                wait=wait_random_exponential(multiplier=self._backoff_s, max=self._max_backoff_s),
                reraise=True,
            ):
                with attempt:
                    response = await asyncio.wait_for(self._generate(facts), self._timeout_s)
        except TimeoutError as exc:
            raise GeminiUnavailable("timeout", f"no answer within {self._timeout_s:.1f}s") from exc
        except genai_errors.APIError as exc:
            reason = "rate_limited" if exc.code == 429 else "server_error" if exc.code >= 500 else "client_error"
            raise GeminiUnavailable(reason, f"HTTP {exc.code}") from exc
        except Exception as exc:  # transport errors and the like: the fast path must not care
            raise GeminiUnavailable("error", type(exc).__name__) from exc
        parsed = response.parsed
        # The SDK leaves `parsed` None, silently, when the text is not JSON of the schema.
        if not isinstance(parsed, ConflictAnalysis):
            raise GeminiUnavailable("malformed", "response did not fit the ConflictAnalysis schema")
        return parsed

    async def _generate(self, facts: str) -> types.GenerateContentResponse:
        return await self._client.aio.models.generate_content(
            model=self._model,
            contents=f"Predicted conflict (JSON):\n{facts}",
            config=types.GenerateContentConfig(
                system_instruction=SYSTEM_INSTRUCTION,
                response_mime_type="application/json",
                response_schema=ConflictAnalysis,
                temperature=0.2,
            ),
        )


Publish = Callable[[ConflictPrediction], Awaitable[None]]


class Enrichments:
    """Background enrichment: bounded concurrency, a bounded queue, failures counted."""

    def __init__(
        self, analyst: GeminiAnalyst, *, min_risk: float = 0.7, max_concurrency: int = 4, max_pending: int = 64
    ) -> None:
        self._analyst = analyst
        self._min_risk = min_risk
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, prediction: ConflictPrediction) -> bool:
        return prediction.source == "fast_path" and prediction.risk >= self._min_risk

    def submit(self, prediction: ConflictPrediction, publish: Publish) -> bool:
        """Start enriching in the background; False when not wanted or shed (queue full)."""
        if not self.wants(prediction):
            return False
        if len(self._tasks) >= self._max_pending:
            m.GEMINI_FAILURES.labels("shed").inc()
            return False
        task = asyncio.get_running_loop().create_task(self._run(prediction, publish))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def drain(self) -> None:
        """Wait for the enrichments under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, prediction: ConflictPrediction, publish: Publish) -> None:
        async with self._semaphore:
            try:
                analysis = await self._analyst.analyse(prediction)
            except GeminiUnavailable as exc:
                m.GEMINI_FAILURES.labels(exc.reason).inc()
                m.GEMINI_CALLS.labels(exc.reason).inc()
                log.warning(
                    "gemini enrichment failed; the fast path stands",
                    extra={"reason": exc.reason, "resource": prediction.resource},
                )
                return
        try:
            await publish(enriched(prediction, analysis))
        except Exception:
            m.GEMINI_FAILURES.labels("error").inc()
            log.exception("publishing an enriched prediction failed", extra={"resource": prediction.resource})
