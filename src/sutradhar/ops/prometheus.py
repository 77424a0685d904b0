"""Prometheus metrics for calls, turns and providers, in one dedicated registry.

Every name carries the `sutradhar_` prefix: `sutradhar_stt_latency_seconds`,
`sutradhar_voice_to_voice_seconds` (on the wire), `sutradhar_turns_total`, `sutradhar_breaker_state`, ...

One `Telemetry` per process (`default`) is handed to the services, which attach it to the router
and the turn metrics; the session calls it for barge-ins, language switches, errors and the wire
latency; `/metrics` serves its `render()`. Tests build their own `Telemetry()` so values never
leak between them.

Counting rules, so nothing is counted twice:
- `observe_turn(record)` counts the turn, its stage latencies, its errors and a language switch
  (record["switched_to"]). It does not count barge-ins: the session calls `barge_in()` when the
  caller interrupts, which is when it happens, and `observe_wire(record)` once the turn's first
  frame is on the wire (`sutradhar_voice_to_voice_seconds`); `observe_turn` feeds
  `sutradhar_reply_audio_ready_seconds` (first audio ready from TTS, not yet sent).
- `retry`, `fallback` and `breaker` are for the TaskRouter; `error(stage, kind)` is for failures
  outside a turn (a transport error, a failed greeting).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from sutradhar.engines.fallback import TaskRouter
    from sutradhar.pipeline.metrics import MetricsCollector

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

# Voice latency lives between 50 ms and a few seconds; the buckets are dense where users notice.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0,
                   4.0, 5.0, 7.5, 10.0, 15.0, 30.0)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
_STAGE_HISTOGRAMS = (("stt_ms", "stt"), ("llm_ttft_ms", "llm"), ("tts_ttfb_ms", "tts"))
UNKNOWN = "unknown"


_TOOL_OUTCOMES = frozenset({"timeout", "bad_arguments", "unknown_tool", "tool_error"})


def _label(value: Any) -> str:
    return str(value) if value not in (None, "") else UNKNOWN


def _pipeline(providers: Mapping[str, Any]) -> str:
    return "+".join(_label(providers.get(stage)) for stage in ("stt", "llm", "tts"))


class Telemetry:
    """One set of Sutradhar metrics in its own CollectorRegistry."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process_metrics: bool = False) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        hist = dict(labelnames=("provider", "language"), buckets=LATENCY_BUCKETS, registry=r)
        self.stt_latency = Histogram("sutradhar_stt_latency_seconds",
                                     "Speech-to-text time per turn", **hist)
        self.llm_ttft = Histogram("sutradhar_llm_ttft_seconds",
                                  "LLM time to first token per turn", **hist)
        self.tts_ttfb = Histogram("sutradhar_tts_ttfb_seconds",
                                  "TTS time to first audio byte per turn", **hist)
        # Both start where the VAD heard the caller's speech end (the first silent frame), so both
        # include the end-of-turn silence window. Only the wire figure is what the caller hears.
        self.voice_to_voice = Histogram(
            "sutradhar_voice_to_voice_seconds",
            "End of caller speech (VAD) to the first agent audio frame sent on the wire "
            "(provider: stt+llm+tts)", **hist)
        self.reply_ready = Histogram(
            "sutradhar_reply_audio_ready_seconds",
            "End of caller speech (VAD) to the first agent audio ready from TTS, before pacing "
            "and the wire (provider: stt+llm+tts)", **hist)
        self.turns = Counter("sutradhar_turns", "Completed turns", ("language",), registry=r)
        self.errors = Counter("sutradhar_errors", "Errors by stage and kind", ("stage", "kind"),
                              registry=r)
        self.retries = Counter("sutradhar_retries", "Provider retries", ("stage", "provider"),
                               registry=r)
        self.fallbacks = Counter("sutradhar_fallbacks", "Moves to the next provider in a chain",
                                 ("stage",), registry=r)
        self.barge_ins = Counter("sutradhar_barge_ins", "Caller interrupted the agent", registry=r)
        self.language_switches = Counter("sutradhar_language_switches",
                                         "Processing-language switches", registry=r)
        self.calls = Counter("sutradhar_calls", "Calls started", registry=r)
        self.answering_verdicts = Counter(
            "sutradhar_answering_verdicts", "Who answered outbound calls (human, machine, unknown), "
            "by source: our detector or the carrier's AMD", ("source", "answered_by"), registry=r)
        self.speculations = Counter("sutradhar_speculations",
                                    "Early STT at a caller's pause: started, used, or dropped because "
                                    "the caller went on (resumed)", ("outcome",), registry=r)
        self.streams_refused = Counter("sutradhar_streams_refused",
                                       "Media streams and carrier webhooks refused or closed at "
                                       "admission (bad token, host, per-source limit, no start, "
                                       "no media, flooding)",
                                       ("carrier", "reason"), registry=r)
        self.inbound_dropped = Counter("sutradhar_inbound_audio_dropped_seconds",
                                       "Caller audio dropped for arriving faster than "
                                       "INBOUND_MAX_SPEED x real time", ("carrier",), registry=r)
        self.active_calls = Gauge("sutradhar_active_calls", "Calls in progress in this process",
                                  registry=r, multiprocess_mode="livesum")
        self.probes = Counter("sutradhar_breaker_probes", "Background probes of open breakers",
                              ("stage", "provider", "outcome"), registry=r)
        self.apologies = Counter("sutradhar_cached_apologies",
                                 "Turns whose TTS failed (or whose budget ran out) before the caller "
                                 "heard anything, answered with the apology cached at start-up",
                                 ("language",), registry=r)
        self.tool_calls = Counter("sutradhar_tool_calls", "Tool calls the LLM made, by outcome "
                                  "(ok, timeout, tool_error, bad_arguments, unknown_tool)",
                                  ("tool", "outcome"), registry=r)
        self.tool_latency = Histogram("sutradhar_tool_latency_seconds", "Duration of a tool call",
                                      ("tool",), registry=r)
        self.results_webhook = Counter("sutradhar_results_webhook", "Post-call results webhook "
                                       "attempts, by outcome (sent, retry, failed)", ("outcome",),
                                       registry=r)
        self.recording_uploads = Counter("sutradhar_recording_uploads", "Recording uploads to "
                                         "RECORDINGS_BUCKET, by outcome (uploaded, retry, failed)",
                                         ("outcome",), registry=r)
        self.loop_lag = Histogram("sutradhar_event_loop_lag_seconds",
                                  "How late a worker's event loop ran a ticker that was due "
                                  "(ops/loop_lag.py): what every call's audio on it waited",
                                  buckets=LOOP_LAG_BUCKETS, registry=r)
        self.breaker_state = Gauge("sutradhar_breaker_state",
                                   "Circuit breaker: 0 closed, 1 half-open, 2 open",
                                   ("stage", "provider"), registry=r, multiprocess_mode="livemax")

    # --- what the core and the session call ---------------------------------------------------

    def observe_turn(self, record: Mapping[str, Any]) -> None:
        """Count one finished turn: latencies by provider and language, errors, language switch."""
        language = _label(record.get("language"))
        timings = record.get("timings") or {}
        providers = record.get("providers") or {}
        self.turns.labels(language).inc()
        for (key, stage), histogram in zip(_STAGE_HISTOGRAMS,
                                           (self.stt_latency, self.llm_ttft, self.tts_ttfb)):
            value = timings.get(key)
            if value is not None:
                histogram.labels(_label(providers.get(stage)), language).observe(value / 1000)
        if (ready := timings.get("v2v_ms")) is not None:
            self.reply_ready.labels(_pipeline(providers), language).observe(ready / 1000)
        for err in record.get("errors") or ():
            self.errors.labels(_label(err.get("stage")), _label(err.get("kind"))).inc()
        if record.get("switched_to"):
            self.language_switches.inc()
        if record.get("apology"):
            self.apologies.labels(language).inc()
        for call in record.get("tool_calls") or ():
            error = call.get("error")
            # A name the LLM made up is not a label: that would grow the series without bound.
            name = "unknown" if error == "unknown_tool" else _label(call.get("name"))
            # The error text may hold an exception message; the label keeps only its kind.
            outcome = "ok" if not error else error if error in _TOOL_OUTCOMES else "tool_error"
            self.tool_calls.labels(name, outcome).inc()
            self.tool_latency.labels(name).observe((call.get("duration_ms") or 0.0) / 1000)

    def observe_wire(self, record: Mapping[str, Any]) -> None:
        """A turn's voice-to-voice on the wire (`timings.v2v_wire_ms`, measured by the session)."""
        wire = (record.get("timings") or {}).get("v2v_wire_ms")
        if wire is not None:
            self.voice_to_voice.labels(_pipeline(record.get("providers") or {}),
                                       _label(record.get("language"))).observe(wire / 1000)

    def results_delivery(self, outcome: str) -> None:
        self.results_webhook.labels(_label(outcome)).inc()

    def recording_upload(self, outcome: str) -> None:
        self.recording_uploads.labels(_label(outcome)).inc()

    def error(self, stage: str, kind: str) -> None:
        self.errors.labels(_label(stage), _label(kind)).inc()

    def retry(self, stage: str, provider: str) -> None:
        self.retries.labels(_label(stage), _label(provider)).inc()

    def fallback(self, stage: str) -> None:
        self.fallbacks.labels(_label(stage)).inc()

    def speculation(self, outcome: str) -> None:
        self.speculations.labels(_label(outcome)).inc()

    def stream_refused(self, carrier: str, reason: str) -> None:
        self.streams_refused.labels(_label(carrier), _label(reason)).inc()

    def inbound_audio_dropped(self, carrier: str, seconds: float) -> None:
        self.inbound_dropped.labels(_label(carrier)).inc(seconds)

    def answering(self, source: str, answered_by: str) -> None:
        self.answering_verdicts.labels(source, answered_by).inc()

    def barge_in(self) -> None:
        self.barge_ins.inc()

    def language_switch(self) -> None:
        """For switches not reported in a turn record (an IVR digit, a "speak Hindi" request)."""
        self.language_switches.inc()

    def call_started(self) -> None:
        self.calls.inc()
        self.active_calls.inc()

    def call_ended(self) -> None:
        self.active_calls.dec()

    def breaker(self, stage: str, provider: str, state: str | int) -> None:
        """Record a breaker transition; `state` is "closed" | "half_open" | "open" or 0/1/2."""
        value = state if isinstance(state, int) else BREAKER_STATES.get(str(state).lower(), 2)
        self.breaker_state.labels(_label(stage), _label(provider)).set(value)

    def probe(self, stage: str, provider: str, ok: bool) -> None:
        self.probes.labels(_label(stage), _label(provider), "ok" if ok else "failed").inc()

    def attach(self, router: TaskRouter, metrics: MetricsCollector) -> None:
        """Count a TaskRouter's retries, fallbacks and breakers, and every turn a MetricsCollector
        finishes. Idempotent."""
        if not any(isinstance(l, RouterTelemetry) and l.sink is self for l in router.listeners):
            router.listeners.append(RouterTelemetry(self))
            for status in router.provider_status():  # start every breaker gauge at its current state
                self.breaker(status["stage"], status["provider"], status["breaker"])
        if self.observe_turn not in metrics.listeners:
            metrics.listeners.append(self.observe_turn)

    # --- exposition --------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text format. With PROMETHEUS_MULTIPROC_DIR set, all workers combined."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            return generate_latest(combined)
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (tests and `sutradhar status`); 0.0 when absent."""
        result = self.registry.get_sample_value(name, labels)
        return result or 0.0


CONTENT_TYPE = CONTENT_TYPE_LATEST

# The process-wide instance; tests build their own `Telemetry()`.
default = Telemetry(process_metrics=True)


class RouterTelemetry:
    """A TaskRouter listener: retries, fallbacks and breaker transitions become metrics.

    Errors are not counted here: the turn record carries them to `observe_turn`.
    """

    def __init__(self, sink: Telemetry | None = None) -> None:
        self.sink = sink or default

    def retry(self, stage: str, provider: str, error: BaseException | None = None) -> None:
        self.sink.retry(stage, provider)

    def fallback(self, stage: str, from_provider: str = "", error: BaseException | None = None) -> None:
        self.sink.fallback(stage)

    def breaker(self, stage: str, provider: str, state: Any) -> None:
        self.sink.breaker(stage, provider, getattr(state, "value", state))

    def probe(self, stage: str, provider: str, ok: bool) -> None:
        self.sink.probe(stage, provider, ok)
