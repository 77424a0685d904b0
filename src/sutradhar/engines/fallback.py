"""TaskRouter: sends each stage's request through an ordered fallback chain of providers.

For every provider in the chain (skipping those that do not serve the language or whose breaker
is open) a request gets `RetryPolicy.attempts` tries under a per-attempt timeout. Streams are
retried only until their first item: once audio or text has reached the caller, replaying it
would duplicate speech, so a stream that breaks later raises `StreamInterrupted` instead.
The rest of the code never knows there is more than one provider.

A turn passes its `TurnDeadline`: until the caller hears the first audio, each attempt's timeout
is its share of what is left of the turn's budget, and a spent budget fails the stage at once
(`BudgetSpent`) so the turn can play its apology. Every live outcome lands in the provider's
`OutcomeWindow` for /health; an open breaker is closed by a background probe (`BreakerProbes`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from loguru import logger

from sutradhar.engines.base import (
    AudioChunk,
    EmptyResult,
    LanguageNotSupported,
    LLMDelta,
    LLMProvider,
    Message,
    ProviderError,
    ProviderTimeout,
    Stage,
    STTProvider,
    ToolSchema,
    Transcript,
    TTSProvider,
)
from sutradhar.engines.deadline import LATE_SPEECH_S, TurnDeadline
from sutradhar.engines.outcomes import OutcomeWindow
from sutradhar.engines.probes import BreakerProbes, ProbeStatus
from sutradhar.engines.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Clock,
    RetryPolicy,
    is_retryable,
)

T = TypeVar("T")


class StreamInterrupted(ProviderError):
    """A stream broke after it had started delivering; what was delivered stands."""


class AllProvidersFailed(ProviderError):
    """Every provider in the chain failed; `errors` holds each one's error in order."""

    def __init__(self, stage: Stage, errors: list[BaseException]) -> None:
        summary = "; ".join(f"{getattr(e, 'provider', '') or '?'}: {type(e).__name__}: {e}" for e in errors)
        super().__init__(f"all {stage} providers failed ({summary or 'none configured'})", stage=stage)
        self.errors = errors

    @property
    def kind(self) -> str:
        kinds = {getattr(e, "kind", "error") for e in self.errors}
        return kinds.pop() if len(kinds) == 1 else "all_failed"


class RouterListener(Protocol):
    """Observes the router for metrics; every method is optional."""

    def retry(self, stage: Stage, provider: str, error: BaseException) -> None: ...
    def fallback(self, stage: Stage, from_provider: str, error: BaseException) -> None: ...
    def breaker(self, stage: Stage, provider: str, state: BreakerState) -> None: ...
    def result(self, stage: Stage, provider: str, ok: bool, error: BaseException | None) -> None: ...
    def probe(self, stage: Stage, provider: str, ok: bool) -> None: ...


@dataclass
class ProviderSlot:
    """One provider in a chain, with its breaker, its recent live outcomes and its probe."""

    stage: Stage
    provider: Any
    breaker: CircuitBreaker
    outcomes: OutcomeWindow = field(default_factory=OutcomeWindow)
    probe: ProbeStatus = field(default_factory=ProbeStatus)
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    calls: int = 0
    failures: int = 0

    @property
    def name(self) -> str:
        return self.provider.name

    def status(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "provider": self.name,
            "breaker": self.breaker.state.value,
            "calls": self.calls,
            "failures": self.failures,
            "last_ok_at": self.last_ok_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "live": self.outcomes.stats(),
            "probe": self.probe.as_dict(),
        }


@dataclass
class StagePolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    failure_threshold: int = 3
    reset_timeout: float = 30.0


class TaskRouter:
    """Routes transcription, generation and synthesis through retries, breakers and fallbacks."""

    def __init__(
        self,
        stt: Sequence[STTProvider] = (),
        llm: Sequence[LLMProvider] = (),
        tts: Sequence[TTSProvider] = (),
        *,
        policies: dict[Stage, StagePolicy] | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        probes: BreakerProbes | None = None,
        outcome_window_s: float = 300.0,
        outcome_max_calls: int = 100,
    ) -> None:
        self.policies: dict[Stage, StagePolicy] = {"stt": StagePolicy(), "llm": StagePolicy(),
                                                   "tts": StagePolicy()}
        self.policies.update(policies or {})
        self.clock = clock
        self.sleep = sleep
        self.listeners: list[Any] = []
        # Off unless asked for: a bare router keeps the plain half-open trial after the reset.
        self.probes = probes or BreakerProbes(interval_s=0.0)
        self.probes.on_result = lambda slot, ok: self._notify("probe", slot.stage, slot.name, ok)
        self._window = (outcome_window_s, outcome_max_calls)
        self.chains: dict[Stage, list[ProviderSlot]] = {
            "stt": [self._slot("stt", p, clock) for p in stt],
            "llm": [self._slot("llm", p, clock) for p in llm],
            "tts": [self._slot("tts", p, clock) for p in tts],
        }

    def _slot(self, stage: Stage, provider: Any, clock: Clock) -> ProviderSlot:
        policy = self.policies[stage]
        breaker = CircuitBreaker(policy.failure_threshold, policy.reset_timeout, clock,
                                 name=f"{stage}:{provider.name}")
        slot = ProviderSlot(stage, provider, breaker, OutcomeWindow(*self._window, clock=clock))

        def changed(state: BreakerState) -> None:
            self._notify("breaker", stage, provider.name, state)
            if state is BreakerState.OPEN:
                self.probes.breaker_opened(slot)

        breaker.on_change = changed
        return slot

    # --- public API ---

    async def route_transcription(
        self, audio: bytes, sample_rate: int, language: str | None = None, detect: bool = False,
        skip: frozenset[str] = frozenset(), deadline: TurnDeadline | None = None,
    ) -> Transcript:
        """Transcribe through the STT chain. Raises AllProvidersFailed when none succeeds.

        Only providers serving `language` are used; with `detect` they are asked to detect the
        spoken language instead of assuming it, so a caller who changes language is followed.
        """
        hint = None if detect else language

        async def transcribe(slot: ProviderSlot) -> Transcript:
            result = await slot.provider.transcribe(audio, sample_rate, hint)
            if not result.text.strip():
                raise EmptyResult("empty transcript", provider=slot.name, stage="stt")
            return result

        # An empty transcript is usually silence or noise, not a broken provider: no breaker count.
        slot, result, latency = await self._first("stt", language, transcribe, empty_counts=False,
                                                  skip=skip, deadline=deadline)
        self.record_success(slot, latency)
        if not result.provider:
            result = Transcript(result.text, result.language, result.confidence, slot.name)
        return result

    async def route_generation(
        self, messages: Sequence[Message], language: str, served: list[str] | None = None,
        deadline: TurnDeadline | None = None, tools: Sequence[ToolSchema] = (),
    ) -> AsyncIterator[LLMDelta]:
        """Stream the reply's text deltas (and tool calls) through the LLM chain. `served` receives
        the provider's name. `tools` go only to providers that support them; the others answer
        without, so a turn with no tools takes exactly the old path."""

        def open_stream(provider: Any) -> AsyncIterator[LLMDelta]:
            if tools and getattr(provider, "supports_tools", False):
                return provider.stream(messages, language, tools=tools)
            return provider.stream(messages, language)

        async for delta in self._stream("llm", language, open_stream, served, deadline):
            yield delta

    async def route_synthesis(
        self, text: str, language: str, served: list[str] | None = None,
        deadline: TurnDeadline | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Stream the audio of `text` through the TTS chain. `served` receives the provider's name."""
        async for chunk in self._stream("tts", language, lambda p: p.synthesize(text, language), served,
                                        deadline):
            yield chunk

    def provider_status(self) -> list[dict[str, Any]]:
        return [slot.status() for chain in self.chains.values() for slot in chain]

    def providers(self, stage: Stage) -> list[Any]:
        return [slot.provider for slot in self.chains[stage]]

    def first_provider(self, stage: Stage, language: str | None) -> str | None:
        for slot in self.chains[stage]:
            if slot.provider.supports(language):
                return slot.name
        return None

    async def aclose(self) -> None:
        await self.probes.aclose()
        for chain in self.chains.values():
            for slot in chain:
                try:
                    await slot.provider.aclose()
                except Exception as exc:  # noqa: BLE001 - shutting down regardless
                    logger.warning("provider close failed provider={} error={}", slot.name, exc)

    # --- internals ---

    async def _first(self, stage: Stage, language: str | None,
                     call: Callable[[ProviderSlot], Awaitable[T]], *, empty_counts: bool = True,
                     skip: frozenset[str] = frozenset(),
                     deadline: TurnDeadline | None = None) -> tuple[ProviderSlot, T, float]:
        """The one retry loop: each usable provider in chain order, `attempts` tries each under the
        per-attempt timeout (bounded by the turn's deadline), until `call` returns; with the
        latency of the answer. Raises AllProvidersFailed with every error."""
        errors: list[BaseException] = []
        policy = self.policies[stage].retry
        for slot in self._candidates(stage, language, errors, skip):
            for attempt in range(1, policy.attempts + 1):
                late = deadline is not None and deadline.spent
                if late and stage != "tts":
                    slot.breaker.release()  # not tried: no verdict on this provider
                    errors.append(deadline.spent_error(stage))
                    raise AllProvidersFailed(stage, errors)
                timeout = policy.timeout
                if late:  # the answer's text exists: say it a little late rather than apologise
                    timeout = min(policy.timeout, LATE_SPEECH_S)
                elif deadline is not None:
                    ahead = self.providers_ahead(slot, language, skip)
                    timeout = deadline.attempt_timeout(policy.timeout, ahead)
                began = self.clock()
                try:
                    async with asyncio.timeout(timeout):
                        result = await call(slot)
                    return slot, result, self.clock() - began
                except asyncio.CancelledError:
                    slot.breaker.release()
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
                    counts = empty_counts or not isinstance(exc, EmptyResult)
                    error = self.record_failure(slot, exc, count_for_breaker=counts, timeout=timeout)
                    # Under a budget a timed-out provider is not asked again: the next one is.
                    budgeted = deadline is not None and timeout < policy.timeout
                    if not (budgeted and isinstance(error, ProviderTimeout)) and self._retry_now(
                            slot, error, attempt, policy):
                        await self.sleep(policy.delay(attempt))
                        continue
                    errors.append(error)
                    break
        raise AllProvidersFailed(stage, errors)

    def providers_ahead(self, slot: ProviderSlot, language: str | None, skip: frozenset[str]) -> int:
        """How many providers may still answer, `slot` included: they share what is left."""
        chain = self.chains[slot.stage]
        later = chain[chain.index(slot) + 1:]
        return 1 + sum(1 for s in later if s.name not in skip and s.provider.supports(language)
                       and s.breaker.state is not BreakerState.OPEN)

    async def _stream(
        self, stage: Stage, language: str, open_stream: Callable[[Any], AsyncIterator[T]],
        served: list[str] | None = None, deadline: TurnDeadline | None = None,
    ) -> AsyncIterator[T]:
        async def start(slot: ProviderSlot) -> tuple[AsyncIterator[T], T]:
            stream = open_stream(slot.provider)
            try:
                return stream, await anext(stream)
            except StopAsyncIteration:
                await _close_quietly(stream)
                raise EmptyResult(f"{stage} stream ended without output", provider=slot.name,
                                  stage=stage) from None
            except BaseException:
                await _close_quietly(stream)
                raise

        slot, (stream, first), latency = await self._first(stage, language, start, deadline=deadline)
        # Delivering: from here on a failure cannot be retried without repeating output.
        if served is not None:
            served.append(slot.name)
        policy = self.policies[stage].retry
        timeout = policy.timeout
        try:
            yield first
            while True:
                # Until the caller hears something, a stalled stream is bounded by the budget too.
                timeout = deadline.stream_timeout(policy.timeout) if deadline else policy.timeout
                try:
                    async with asyncio.timeout(timeout):
                        item = await anext(stream)
                except StopAsyncIteration:
                    break
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            slot.breaker.release()
            raise
        except Exception as exc:  # noqa: BLE001 - reported as an interrupted stream
            # Cut by the turn's budget after answering in time: the budget ran out, not the provider.
            budget_cut = isinstance(exc, TimeoutError) and timeout < policy.timeout
            error = self.record_failure(slot, exc, count_for_breaker=not budget_cut, timeout=timeout)
            raise StreamInterrupted(f"{stage} stream broke after it started: {error}",
                                    provider=slot.name, stage=stage) from error
        finally:
            await _close_quietly(stream)
        self.record_success(slot, latency)

    def _candidates(self, stage: Stage, language: str | None, errors: list[BaseException],
                    skip: frozenset[str] = frozenset()):
        """Yield the chain's usable slots in order, noting why others were skipped."""
        previous: ProviderSlot | None = None
        for slot in self.chains[stage]:
            if slot.name in skip:  # already tried for this request (a failed stream)
                previous = slot
                continue
            if not slot.provider.supports(language):
                errors.append(LanguageNotSupported(f"does not serve {language}", provider=slot.name,
                                                   stage=stage))
                continue
            if not slot.breaker.allow():
                errors.append(CircuitOpen("circuit open", provider=slot.name, stage=stage))
                continue
            if previous is not None and errors:
                self._notify("fallback", stage, previous.name, errors[-1])
                logger.bind(stage=stage).warning("fallback from={} to={} reason={}", previous.name,
                                                 slot.name, errors[-1])
            previous = slot
            yield slot

    def _retry_now(self, slot: ProviderSlot, error: BaseException, attempt: int, policy: RetryPolicy) -> bool:
        if attempt >= policy.attempts or not is_retryable(error) or not slot.breaker.allow():
            return False
        self._notify("retry", slot.stage, slot.name, error)
        logger.bind(stage=slot.stage).info("retry provider={} attempt={} error={}", slot.name, attempt + 1,
                                           error)
        return True

    def record_failure(self, slot: ProviderSlot, exc: BaseException, count_for_breaker: bool = True,
                       timeout: float | None = None) -> BaseException:
        """Count a failed live call (breaker, counters, outcome window, listeners); the error
        returned carries the provider and stage. `timeout`: the one the attempt ran under."""
        if isinstance(exc, TimeoutError):
            limit = self.policies[slot.stage].retry.timeout if timeout is None else timeout
            exc = ProviderTimeout(f"no answer within {limit:.3g}s")
        if isinstance(exc, ProviderError):
            exc.provider = exc.provider or slot.name
            exc.stage = exc.stage or slot.stage
        slot.calls += 1
        slot.failures += 1
        slot.last_error = f"{type(exc).__name__}: {exc}"
        slot.last_error_at = time.time()
        if count_for_breaker:
            slot.breaker.record_failure()
        else:
            slot.breaker.release()
        # What does not count against the breaker (an empty transcript of silence, a stream cut by
        # the turn's budget) is no provider error in its live record either.
        slot.outcomes.add(not count_for_breaker, getattr(exc, "kind", "error"))
        self._notify("result", slot.stage, slot.name, False, exc)
        logger.bind(stage=slot.stage).warning("provider failed provider={} kind={} error={}", slot.name,
                                              getattr(exc, "kind", type(exc).__name__), exc)
        return exc

    def record_success(self, slot: ProviderSlot, latency_s: float | None = None) -> None:
        slot.calls += 1
        slot.last_ok_at = time.time()
        slot.outcomes.add(True, latency_s=latency_s)
        slot.breaker.record_success()
        self._notify("result", slot.stage, slot.name, True, None)

    def _notify(self, event: str, *args: Any) -> None:
        for listener in self.listeners:
            method = getattr(listener, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as exc:  # noqa: BLE001 - metrics must never break a call
                logger.warning("router listener failed event={} error={}", event, exc)


async def _close_quietly(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # noqa: BLE001 - the stream already failed; closing it is best effort
        pass
