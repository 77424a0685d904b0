import pytest

from sutradhar.providers.base import AuthError, ProviderTimeout, QuotaExceeded, RateLimited
from sutradhar.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_retry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_reset():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
        assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 9.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.2
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() is True
    assert breaker.allow() is False  # only one trial at a time


def test_half_open_success_closes_and_failure_reopens():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_success_resets_the_consecutive_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_state_changes_are_reported():
    clock = FakeClock()
    seen = []
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, clock=clock, on_change=seen.append)
    breaker.record_failure()
    clock.now += 1
    breaker.allow()
    breaker.record_success()
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def _no_sleep(_: float) -> None:
    return None


async def test_retries_until_success():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RateLimited("slow down")
        return "ok"

    assert await call_with_retry(flaky, RetryPolicy(attempts=3), sleep=_no_sleep) == "ok"
    assert len(calls) == 3


@pytest.mark.parametrize("error", [AuthError("bad key"), QuotaExceeded("no credits")])
async def test_retries_stop_on_non_retryable_errors(error):
    calls = []

    async def failing():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        await call_with_retry(failing, RetryPolicy(attempts=5), sleep=_no_sleep)
    assert len(calls) == 1


async def test_per_attempt_timeout_raises_provider_timeout():
    import asyncio

    async def hangs():
        await asyncio.sleep(10)

    with pytest.raises(ProviderTimeout):
        await call_with_retry(hangs, RetryPolicy(attempts=2, timeout=0.05), sleep=_no_sleep)


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(backoff=0.1, max_backoff=0.3, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]
