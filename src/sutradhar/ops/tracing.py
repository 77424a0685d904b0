"""Optional OpenTelemetry traces: one span per turn with a child span per stage.

Off unless OTEL_ENABLED=true and the `otel` extra (opentelemetry-sdk) is installed. Spans go to an
OTLP collector when opentelemetry-exporter-otlp is installed and OTEL_EXPORTER_OTLP_ENDPOINT is
set, else to the log at DEBUG. Spans are rebuilt from each finished turn's timings (no code on the
audio path): the turn span covers end of speech -> end of the reply, with stt, llm and tts children
placed where the timings say they ran.
"""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

_tracer: Any = None


def setup_tracing(settings: Any, exporter: Any = None) -> bool:
    """Install a tracer provider when enabled; return whether tracing is on."""
    global _tracer
    if not getattr(settings, "otel_enabled", False):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )
    except ImportError:
        logger.bind(stage="tracing").warning(
            "OTEL_ENABLED is set but opentelemetry-sdk is not installed (pip install 'sutradhar[otel]')")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": "sutradhar"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_default_exporter()))
    _tracer = provider.get_tracer("sutradhar")
    return True


def _default_exporter() -> Any:
    import os

    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            return OTLPSpanExporter()
        except ImportError:
            logger.bind(stage="tracing").warning("opentelemetry-exporter-otlp is not installed; "
                                                 "spans go to the log")
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class _LogExporter(SpanExporter):
        def export(self, spans: Any) -> Any:
            for span in spans:
                ms = (span.end_time - span.start_time) / 1e6
                logger.bind(stage="tracing").debug("span {} {:.0f} ms {}", span.name, ms,
                                                   dict(span.attributes or {}))
            return SpanExportResult.SUCCESS

    return _LogExporter()


def disable() -> None:
    global _tracer
    _tracer = None


def record_turn(record: dict[str, Any], ended_at_ns: int | None = None) -> None:
    """Emit the spans of one finished turn (a MetricsCollector listener)."""
    if _tracer is None:
        return
    t = record.get("timings") or {}
    ms = {k: float(t.get(k) or 0.0) for k in ("stt_ms", "llm_ttft_ms", "llm_ms", "tts_ttfb_ms",
                                                "tts_ms", "v2v_ms")}
    providers = record.get("providers") or {}
    end = ended_at_ns or time.time_ns()
    llm_start = ms["stt_ms"]
    tts_start = llm_start + ms["llm_ttft_ms"]
    total = max(ms["v2v_ms"], llm_start + ms["llm_ms"], tts_start + ms["tts_ms"])
    start = end - int(total * 1e6)
    attrs = {"call_id": str(record.get("call_id", "")), "turn_id": str(record.get("turn_id", "")),
             "language": str(record.get("language") or ""),
             "interrupted": bool(record.get("interrupted")),
             "voice_to_voice_ms": ms["v2v_ms"]}
    turn = _tracer.start_span("turn", start_time=start, attributes=attrs)
    from opentelemetry import trace

    context = trace.set_span_in_context(turn)
    for stage, offset, length, extra in (
        ("stt", 0.0, ms["stt_ms"], {}),
        ("llm", llm_start, ms["llm_ms"], {"ttft_ms": ms["llm_ttft_ms"]}),
        ("tts", tts_start, ms["tts_ms"], {"ttfb_ms": ms["tts_ttfb_ms"]}),
    ):
        if length <= 0:
            continue
        span = _tracer.start_span(stage, context=context, start_time=start + int(offset * 1e6),
                                  attributes={"provider": str(providers.get(stage) or ""), **extra})
        span.end(end_time=start + int((offset + length) * 1e6))
    for err in record.get("errors") or ():
        turn.add_event("error", {k: str(v) for k, v in err.items()})
    turn.end(end_time=end)
