"""Honest provider health: judged by live outcomes over a sliding window, not only by a model list."""

import pytest

from sutradhar.engines.base import ProviderError, ProviderTimeout
from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.outcomes import OutcomeWindow
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.ops.health import HealthMonitor
from sutradhar.testing.scripted import ScriptedSTT


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_reports_error_rate_timeouts_and_p95_of_recent_calls():
    clock = FakeClock()
    window = OutcomeWindow(window_s=300, max_calls=100, clock=clock)
    for ms in range(1, 21):  # 20 answers of 10..200 ms
        window.add(True, latency_s=ms / 100)
    window.add(False, "timeout")
    window.add(False, "rate_limit")
    stats = window.stats()
    assert stats["calls"] == 22 and stats["errors"] == 2 and stats["timeouts"] == 1
    assert stats["error_rate"] == pytest.approx(2 / 22, abs=1e-3)
    assert stats["p95_ms"] == 190.0 and stats["last_ok"] is False


def test_window_forgets_old_calls_and_keeps_at_most_max_calls():
    clock = FakeClock()
    window = OutcomeWindow(window_s=60, max_calls=3, clock=clock)
    window.add(False, "timeout")
    clock.now += 61
    assert window.stats()["calls"] == 0
    for _ in range(5):
        window.add(True, latency_s=0.1)
    assert window.stats()["calls"] == 3 and window.stats()["error_rate"] == 0


def monitor(*stt) -> tuple[TaskRouter, HealthMonitor]:
    policy = StagePolicy(RetryPolicy(attempts=1, timeout=1.0, backoff=0), failure_threshold=100)
    r = TaskRouter(stt, policies={"stt": policy})
    return r, HealthMonitor(r, max_error_rate=0.5, min_calls=3)


def by_name(body):
    return {p["provider"]: p for p in body["providers"]}


def test_a_provider_whose_live_calls_time_out_is_degraded_though_its_check_passes():
    r, health = monitor(ScriptedSTT(name="hung"), ScriptedSTT(name="backup"))
    hung, backup = r.chains["stt"]
    health.providers[("stt", "hung")] = {"ok": True, "error": None}  # GET /models answers
    for _ in range(3):
        r.record_failure(hung, ProviderTimeout("no answer"))
        r.record_success(backup, 0.2)
    ready, body = health.report()
    entry = by_name(body)["hung"]
    assert entry["ok"] is False and entry["status"] == "degraded"
    assert entry["live"]["timeouts"] == 3 and entry["health"]["ok"] is True
    assert ready and body["status"] == "degraded"
    assert any("hung" in reason and "timed out" in reason for reason in body["reasons"])
    assert by_name(body)["backup"]["ok"] is True and by_name(body)["backup"]["live"]["p95_ms"] == 200.0


def test_the_only_provider_failing_its_live_calls_makes_the_server_unavailable():
    r, health = monitor(ScriptedSTT(name="only"))
    (only,) = r.chains["stt"]
    for _ in range(3):
        r.record_failure(only, ProviderError("upstream 500"))
    ready, body = health.report()
    assert not ready and body["status"] == "unavailable" and "no usable stt provider" in body["reasons"]


def test_a_live_success_or_a_probe_after_the_failures_counts_as_recovered():
    r, health = monitor(ScriptedSTT(name="flaky"))
    (slot,) = r.chains["stt"]
    for _ in range(4):
        r.record_failure(slot, ProviderTimeout("no answer"))
    assert not health.report()[0]
    slot.probe.last_ok_at = (slot.last_error_at or 0) + 1
    assert health.report()[0]
    slot.probe.last_ok_at = None
    r.record_success(slot, 0.1)
    assert health.report()[0]


def test_too_few_calls_say_nothing():
    r, health = monitor(ScriptedSTT(name="new"))
    r.record_failure(r.chains["stt"][0], ProviderTimeout("no answer"))
    assert health.report()[1]["status"] == "ok"
