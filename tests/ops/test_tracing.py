"""Optional OpenTelemetry: a finished turn becomes one turn span with stt, llm and tts children."""

from __future__ import annotations

import pytest

from sutradhar.config import load_settings
from sutradhar.ops import tracing

pytest.importorskip("opentelemetry.sdk")


def test_tracing_is_off_by_default():
    assert tracing.setup_tracing(load_settings()) is False
    tracing.record_turn({"timings": {"stt_ms": 10}})  # a no-op, no error


def test_a_turn_record_becomes_a_turn_span_with_stage_children():
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    assert tracing.setup_tracing(load_settings(otel_enabled=True), exporter=exporter)
    try:
        tracing.record_turn({"call_id": "CA1", "turn_id": 3, "language": "gu-IN",
                             "timings": {"stt_ms": 100, "llm_ttft_ms": 200, "llm_ms": 500,
                                         "tts_ttfb_ms": 80, "tts_ms": 600, "v2v_ms": 380},
                             "providers": {"stt": "sarvam", "llm": "openai", "tts": "piper"},
                             "errors": [{"stage": "tts", "kind": "timeout", "provider": "sarvam"}]},
                            ended_at_ns=10_000_000_000)
    finally:
        tracing.disable()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"turn", "stt", "llm", "tts"}
    turn = spans["turn"]
    assert turn.attributes["call_id"] == "CA1" and turn.attributes["language"] == "gu-IN"
    assert turn.events[0].name == "error"
    for stage in ("stt", "llm", "tts"):
        assert spans[stage].parent.span_id == turn.context.span_id
    assert spans["stt"].start_time == turn.start_time
    assert spans["llm"].start_time == spans["stt"].end_time
    assert (spans["tts"].start_time - spans["stt"].end_time) == 200 * 1_000_000
    assert spans["tts"].attributes["provider"] == "piper"
