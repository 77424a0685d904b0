"""TaskRouter: sends each stage's request through an ordered fallback chain of providers.

For every provider in the chain (skipping those that do not serve the language or whose breaker
is open) a request gets `RetryPolicy.attempts` tries under a per-attempt timeout. Streams are
retried only until their first item: once audio or text has reached the caller, replaying it
would duplicate speech, so a stream that breaks later raises `StreamInterrupted` instead.
The rest of the code never knows there is more than one provider.
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
    LLMProvider,
    Message,
    ProviderError,
    ProviderTimeout,
    Stage,
    STTProvider,
    Transcript,
    TTSProvider,
)
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


@dataclass
class ProviderSlot:
    """One provider in a chain, with its breaker and its last result for /health."""

    stage: Stage
    provider: Any
    breaker: CircuitBreaker
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
    ) -> None:
        self.policies: dict[Stage, StagePolicy] = {"stt": StagePolicy(), "llm": StagePolicy(),
                                                   "tts": StagePolicy()}
        self.policies.update(policies or {})
        self.clock = clock
        self.sleep = sleep
        self.listeners: list[Any] = []
        self.chains: dict[Stage, list[ProviderSlot]] = {
            "stt": [self._slot("stt", p, clock) for p in stt],
            "llm": [self._slot("llm", p, clock) for p in llm],
            "tts": [self._slot("tts", p, clock) for p in tts],
        }

    def _slot(self, stage: Stage, provider: Any, clock: Clock) -> ProviderSlot:
        policy = self.policies[stage]
        breaker = CircuitBreaker(policy.failure_threshold, policy.reset_timeout, clock,
                                 name=f"{stage}:{provider.name}")
        breaker.on_change = lambda state: self._notify("breaker", stage, provider.name, state)
        return ProviderSlot(stage, provider, breaker)

    # --- public API ---

    async def route_transcription(
        self, audio: bytes, sample_rate: int, language: str | None = None, detect: bool = False,
        skip: frozenset[str] = frozenset(),
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
        slot, result = await self._first("stt", language, transcribe, empty_counts=False, skip=skip)
        self.record_success(slot)
        if not result.provider:
            result = Transcript(result.text, result.language, result.confidence, slot.name)
        return result

    async def route_generation(
        self, messages: Sequence[Message], language: str, served: list[str] | None = None
    ) -> AsyncIterator[str]:
        """Stream the reply's text deltas through the LLM chain. `served` receives the provider's name."""
        async for delta in self._stream("llm", language, lambda p: p.stream(messages, language), served):
            yield delta

    async def route_synthesis(
        self, text: str, language: str, served: list[str] | None = None
    ) -> AsyncIterator[AudioChunk]:
        """Stream the audio of `text` through the TTS chain. `served` receives the provider's name."""
        async for chunk in self._stream("tts", language, lambda p: p.synthesize(text, language), served):
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
        for chain in self.chains.values():
            for slot in chain:
                try:
                    await slot.provider.aclose()
                except Exception as exc:  # noqa: BLE001 - shutting down regardless
                    logger.warning("provider close failed provider={} error={}", slot.name, exc)

    # --- internals ---

    async def _first(self, stage: Stage, language: str | None,
                     call: Callable[[ProviderSlot], Awaitable[T]], *, empty_counts: bool = True,
                     skip: frozenset[str] = frozenset()) -> tuple[ProviderSlot, T]:
        """The one retry loop: each usable provider in chain order, `attempts` tries each under the
        per-attempt timeout, until `call` returns. Raises AllProvidersFailed with every error."""
        errors: list[BaseException] = []
        policy = self.policies[stage].retry
        for slot in self._candidates(stage, language, errors, skip):
            for attempt in range(1, policy.attempts + 1):
                try:
                    async with asyncio.timeout(policy.timeout):
                        return slot, await call(slot)
                except asyncio.CancelledError:
                    slot.breaker.release()
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
                    counts = empty_counts or not isinstance(exc, EmptyResult)
                    error = self.record_failure(slot, exc, count_for_breaker=counts)
                    if self._retry_now(slot, error, attempt, policy):
                        await self.sleep(policy.delay(attempt))
                        continue
                    errors.append(error)
                    break
        raise AllProvidersFailed(stage, errors)

    async def _stream(
        self, stage: Stage, language: str, open_stream: Callable[[Any], AsyncIterator[T]],
        served: list[str] | None = None,
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

        slot, (stream, first) = await self._first(stage, language, start)
        # Delivering: from here on a failure cannot be retried without repeating output.
        if served is not None:
            served.append(slot.name)
        policy = self.policies[stage].retry
        try:
            yield first
            while True:
                try:
                    async with asyncio.timeout(policy.timeout):
                        item = await anext(stream)
                except StopAsyncIteration:
                    break
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            slot.breaker.release()
            raise
        except Exception as exc:  # noqa: BLE001 - reported as an interrupted stream
            error = self.record_failure(slot, exc)
            raise StreamInterrupted(f"{stage} stream broke after it started: {error}",
                                    provider=slot.name, stage=stage) from error
        finally:
            await _close_quietly(stream)
        self.record_success(slot)

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

    def record_failure(self, slot: ProviderSlot, exc: BaseException, count_for_breaker: bool = True) -> BaseException:
        if isinstance(exc, TimeoutError):
            exc = ProviderTimeout(f"no answer within {self.policies[slot.stage].retry.timeout:g}s")
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
        self._notify("result", slot.stage, slot.name, False, exc)
        logger.bind(stage=slot.stage).warning("provider failed provider={} kind={} error={}", slot.name,
                                              getattr(exc, "kind", type(exc).__name__), exc)
        return exc

    def record_success(self, slot: ProviderSlot) -> None:
        slot.calls += 1
        slot.last_ok_at = time.time()
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
