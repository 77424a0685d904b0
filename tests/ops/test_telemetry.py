"""Prometheus metrics move when the core and the session report."""

from __future__ import annotations

from sutradhar.ops.prometheus import Telemetry


def record(**extra) -> dict:
    r = {"language": "te-IN", "interrupted": False, "switched_to": None,
         "timings": {"stt_ms": 120.0, "llm_ttft_ms": 300.0, "tts_ttfb_ms": 80.0, "v2v_ms": 650.0,
                     "v2v_wire_ms": 672.0},
         "providers": {"stt": "sarvam", "llm": "openai", "tts": "piper"}, "errors": []}
    r.update(extra)
    return r


def test_observe_turn_fills_latency_histograms_by_provider_and_language():
    t = Telemetry()
    t.observe_turn(record())
    t.observe_turn(record(timings={"stt_ms": 200.0}))
    assert t.value("sutradhar_turns_total", language="te-IN") == 2
    assert t.value("sutradhar_stt_latency_seconds_count", provider="sarvam", language="te-IN") == 2
    assert abs(t.value("sutradhar_stt_latency_seconds_sum", provider="sarvam",
                       language="te-IN") - 0.32) < 1e-9
    assert t.value("sutradhar_llm_ttft_seconds_count", provider="openai", language="te-IN") == 1
    assert t.value("sutradhar_tts_ttfb_seconds_bucket", provider="piper", language="te-IN",
                   le="0.1") == 1
    # The orchestrator's figure is audio ready from TTS, not yet on the wire: named for that.
    assert t.value("sutradhar_reply_audio_ready_seconds_count", provider="sarvam+openai+piper",
                   language="te-IN") == 1
    assert t.value("sutradhar_voice_to_voice_seconds_count", provider="sarvam+openai+piper",
                   language="te-IN") == 0


def test_voice_to_voice_is_the_first_frame_on_the_wire():
    t = Telemetry()
    t.observe_wire(record())
    t.observe_wire(record(timings={"v2v_ms": 650.0}))  # no frame went out: nothing observed
    assert t.value("sutradhar_voice_to_voice_seconds_count", provider="sarvam+openai+piper",
                   language="te-IN") == 1
    assert abs(t.value("sutradhar_voice_to_voice_seconds_sum", provider="sarvam+openai+piper",
                       language="te-IN") - 0.672) < 1e-9


def test_errors_and_language_switches_are_counted_from_the_turn_record():
    t = Telemetry()
    t.observe_turn(record(switched_to="hi-IN", errors=[
        {"stage": "stt", "provider": "sarvam", "kind": "timeout", "message": "slow"},
        {"stage": "stt", "provider": "sarvam", "kind": "timeout", "message": "slow"}]))
    assert t.value("sutradhar_errors_total", stage="stt", kind="timeout") == 2
    assert t.value("sutradhar_language_switches_total") == 1


def test_router_and_session_events_move_their_counters_and_gauges():
    t = Telemetry()
    t.retry("tts", "sarvam")
    t.retry("tts", "sarvam")
    t.fallback("tts")
    t.barge_in()
    t.call_started()
    t.call_started()
    t.call_ended()
    t.breaker("tts", "sarvam", "open")
    assert t.value("sutradhar_retries_total", stage="tts", provider="sarvam") == 2
    assert t.value("sutradhar_fallbacks_total", stage="tts") == 1
    assert t.value("sutradhar_barge_ins_total") == 1
    assert t.value("sutradhar_active_calls") == 1
    assert t.value("sutradhar_calls_total") == 2
    assert t.value("sutradhar_breaker_state", stage="tts", provider="sarvam") == 2
    t.breaker("tts", "sarvam", "half_open")
    assert t.value("sutradhar_breaker_state", stage="tts", provider="sarvam") == 1
    t.breaker("tts", "sarvam", 0)
    assert t.value("sutradhar_breaker_state", stage="tts", provider="sarvam") == 0


def test_render_is_prometheus_text_of_the_dedicated_registry():
    t = Telemetry()
    t.barge_in()
    text = t.render().decode()
    assert "# TYPE sutradhar_barge_ins_total counter" in text
    assert "sutradhar_barge_ins_total 1.0" in text
    assert "python_gc" not in text  # the default global registry is not mixed in


def test_the_grafana_dashboard_only_queries_metrics_that_exist():
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json")
                           .read_text())
    t = Telemetry(process_metrics=True)
    t.observe_turn(record(errors=[{"stage": "stt", "kind": "timeout"}]))
    t.observe_wire(record())
    t.retry("stt", "sarvam")
    t.fallback("stt")
    t.breaker("stt", "sarvam", "open")
    known = {s.name for m in t.registry.collect() for s in m.samples}
    used = {name for p in dashboard["panels"] for target in p["targets"]
            for name in re.findall(r"\b(?:sutradhar|process)_[a-z_]+", target["expr"])}
    assert used and used <= known, used - known


def test_cached_apologies_spent_budgets_and_breaker_probes_are_counted():
    from sutradhar.ops.prometheus import RouterTelemetry

    t = Telemetry()
    t.observe_turn(record(apology="cached:piper", errors=[{"stage": "tts", "kind": "budget"}]))
    t.observe_turn(record())
    assert t.value("sutradhar_cached_apologies_total", language="te-IN") == 1
    assert t.value("sutradhar_errors_total", stage="tts", kind="budget") == 1
    listener = RouterTelemetry(t)
    listener.probe("stt", "sarvam", False)
    listener.probe("stt", "sarvam", True)
    assert t.value("sutradhar_breaker_probes_total", stage="stt", provider="sarvam", outcome="failed") == 1
    assert t.value("sutradhar_breaker_probes_total", stage="stt", provider="sarvam", outcome="ok") == 1
