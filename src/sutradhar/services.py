"""Services: what every call in this process shares, built once by `open_services`.

Calls never share per-call state; they share only these (settings, the engines behind one
router, metrics, call records, the live-call registry, the IVR language map, health), so one call's
failure stays its own. `open_services` builds and starts every part from the settings, in one
place, and `Services.aclose` takes them down in reverse order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from loguru import logger

from sutradhar.agents.catalog import build_toolbox
from sutradhar.agents.flow import Flow
from sutradhar.agents.result_delivery import CallResults
from sutradhar.agents.spec import AgentSpec, load_agent
from sutradhar.agents.tools import ToolBox
from sutradhar.audio.ogg_opus import OggUnavailable, require_av
from sutradhar.campaigns.prompts import CallScript, render
from sutradhar.config import Settings
from sutradhar.engines.fallback import StagePolicy, TaskRouter
from sutradhar.engines.probes import BreakerProbes
from sutradhar.engines.registry import EngineSet, build_engines
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.errors import ConfigError
from sutradhar.ops import prometheus, tracing
from sutradhar.ops.health import HealthMonitor
from sutradhar.ops.live_calls import LiveCalls
from sutradhar.ops.loop_lag import LoopLagMonitor
from sutradhar.ops.memory import MemoryReleaser
from sutradhar.ops.prometheus import Telemetry
from sutradhar.ops.shared_state import BreakerSync, IvrLanguageMap, SharedState
from sutradhar.ops.stream_tokens import StreamTokens
from sutradhar.pipeline.apologies import ApologyCache
from sutradhar.pipeline.flow import FlowRun
from sutradhar.pipeline.metrics import MetricsCollector
from sutradhar.pipeline.orchestrator import AgentOrchestrator
from sutradhar.pipeline.turn_policy import AcousticModel
from sutradhar.store import CallStore, NullRecorder, Recorder
from sutradhar.store.recording_archive import RecordingArchive
from sutradhar.store.recording_bucket import bucket_from_settings
from sutradhar.store.recording_files import recordings_dir
from sutradhar.store.workers import WorkerLedger
from sutradhar.telephony.admission import SourceLimiter

log = logger.bind(stage="services")


def router_from_settings(settings: Settings, engines: EngineSet) -> TaskRouter:
    """The fallback router over `engines`, with each stage's retry, timeout and breaker settings."""

    def policy(timeout: float) -> StagePolicy:
        return StagePolicy(RetryPolicy(settings.retry_attempts, timeout, settings.retry_backoff_s),
                           settings.breaker_failure_threshold, settings.breaker_reset_s)

    return TaskRouter(engines.stt, engines.llm, engines.tts,
                      policies={"stt": policy(settings.stt_timeout_s),
                                "llm": policy(settings.llm_timeout_s),
                                "tts": policy(settings.tts_timeout_s)},
                      probes=BreakerProbes(settings.breaker_probe_interval_s,
                                           settings.breaker_probe_timeout_s),
                      outcome_window_s=settings.health_window_s,
                      outcome_max_calls=settings.health_window_calls)


@dataclass
class Services:
    settings: Settings
    router: TaskRouter
    metrics: MetricsCollector
    telemetry: Telemetry
    shared: SharedState
    calls: LiveCalls
    recorder: Recorder  # the call store, or what the caller of open_services asked for
    store: CallStore | None  # None when records are off or the database did not start
    store_error: str | None
    health: HealthMonitor
    sources: SourceLimiter  # open media sockets per client address (MAX_STREAMS_PER_SOURCE)
    breaker_sync: BreakerSync | None = None
    workers: WorkerLedger | None = None  # this worker's heartbeat in the store (crash recovery)
    apologies: ApologyCache = field(default_factory=ApologyCache)  # filled by warm_up
    memory: MemoryReleaser | None = None  # gives freed heap back to the OS while no call is live
    loop_lag: LoopLagMonitor | None = None  # how late this worker's event loop runs
    tools: ToolBox = field(default_factory=ToolBox)  # what the LLM is offered (TOOLS)
    agent: AgentSpec | None = None  # AGENT_PATH: per-language greetings and prompts
    acoustic: AcousticModel | None = None  # TURN_ACOUSTIC_MODEL: the end-of-turn model every call shares
    flow: Flow | None = None  # the agent's flow, its tools per state (each call gets a FlowRun)
    results: CallResults | None = None  # the agent's post-call results and their webhook
    # RECORDING_FORMAT=ogg or RECORDINGS_BUCKET: recordings converted and uploaded after the call
    recordings: RecordingArchive | None = None
    _owns_engines: bool = field(default=True, repr=False)

    @property
    def ivr_languages(self) -> IvrLanguageMap:
        return self.shared.languages

    @property
    def stream_tokens(self) -> StreamTokens:
        return self.shared.stream_tokens

    def new_orchestrator(self, call_id: str, language: str | None = None,
                         script: CallScript | None = None) -> AgentOrchestrator:
        """`script`: a campaign call's variables and prompts, filled into the greetings and prompts."""
        s = self.settings
        greetings = self.agent.greetings() if self.agent else {}
        prompts = self.agent.system_prompts() if self.agent else {}
        system_prompt = s.system_prompt
        if script is not None:
            greetings = script.personalise(greetings, script.greetings)
            prompts = script.personalise(prompts, script.system_prompts)
            system_prompt = render(system_prompt, script.variables)
        return AgentOrchestrator(
            router=self.router, call_id=call_id, language=language or s.default_language,
            languages=tuple(s.languages), system_prompt=system_prompt, max_history=s.max_history,
            max_context_chars=s.max_context_chars, switch_threshold=s.switch_threshold,
            min_turns_before_switch=s.min_turns_before_switch, metrics=self.metrics,
            turn_budget_s=s.turn_budget_s, apologies=self.apologies, tools=self.tools,
            tool_filler_s=s.tool_filler_ms / 1000, tool_prefetch=s.tool_prefetch,
            greetings=greetings or None, system_prompts=prompts or None,
            flow=FlowRun(self.flow, call_id) if self.flow is not None else None,
        )

    async def warm_up(self) -> None:
        """Load local models before the first caller needs them, then synthesise the apology lines
        with them (failures are logged, not fatal)."""

        async def one(stage: str, provider: object) -> None:
            try:
                await provider.warm_up()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - the router falls back if it stays broken
                logger.bind(stage="startup").warning("warm-up failed stage={} provider={} error={}",
                                                     stage, getattr(provider, "name", "?"), exc)

        await asyncio.gather(*(one(stage, p) for stage in ("stt", "llm", "tts")
                               for p in self.router.providers(stage) if callable(getattr(p, "warm_up", None))))
        # Lines an LLM says word for word, in its languages, made by a TTS that keeps audio (Piper).
        lines = [(line, language) for p in self.router.providers("llm") for line in getattr(p, "fixed_lines", ())
                 for language in sorted(getattr(p, "languages", None) or [self.settings.default_language])]
        for tts in self.router.providers("tts"):
            prepare = getattr(tts, "prepare_lines", None)
            for line, language in lines if callable(prepare) else ():
                try:
                    await prepare([line], language)
                except Exception as exc:  # noqa: BLE001 - said live then, as any other line
                    logger.bind(stage="startup").warning("fixed line not prepared provider={} error={}",
                                                         getattr(tts, "name", "?"), exc)
        if self.settings.apology_audio:
            await self.apologies.prepare(self.router.providers("tts"), self.settings.languages,
                                         self.settings.tts_timeout_s)

    async def aclose(self) -> None:
        """Stop every part, the reverse of the order open_services started them."""
        await self.health.aclose()
        if self.results is not None:
            await self.results.aclose()  # results being made are stored before the store closes
        if self.recordings is not None:
            await self.recordings.aclose()  # what is not finished stays on disk for the next start
        if self.store is not None:
            await self.store.flush()  # the calls' last records before the worker says it stopped
            if self.workers is not None:
                await self.workers.aclose()
            await self.store.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        if self.loop_lag is not None:
            await self.loop_lag.aclose()
        await self.calls.aclose()
        if self.breaker_sync is not None:
            await self.breaker_sync.aclose()
        await self.shared.aclose()
        if self._owns_engines:
            await self.router.aclose()
        await self.tools.aclose()  # webhook tools' connection pools


async def load_acoustic_model(settings: Settings) -> AcousticModel | None:
    """TURN_ACOUSTIC_MODEL's model, loaded once for the process, or None. A model asked for but
    not installed fails the start (SmartTurnUnavailable says how to install it)."""
    if settings.turn_acoustic_model != "smart-turn":
        return None
    from sutradhar.audio.smart_turn import shared_smart_turn

    model = await asyncio.to_thread(shared_smart_turn)
    log.info("end-of-turn model: Smart Turn v3 from {}", model.path)
    return model


async def open_services(
    settings: Settings,
    engines: EngineSet | None = None,
    *,
    records: bool = True,
    recorder: Recorder | None = None,
    telemetry: Telemetry | None = None,
) -> Services:
    """Build and start every shared part from the settings.

    `engines` replaces the configured engines (tests, benchmarks; the caller then closes them).
    `records=False` keeps no call store (nothing is written under DATA_DIR); `recorder` replaces
    the store as the sink of call records. A part that fails to start is logged and reported by
    /health; the server keeps taking calls.
    """
    owns_engines = engines is None
    # First: a bad agent file or TOOLS list fails the start before anything opens.
    agent = load_agent(settings.agent_path) if settings.agent_path else None
    if agent is not None:
        settings = settings.model_copy(update=agent.settings_overrides())
    tools = build_toolbox(settings, agent.webhook_tools if agent else ())
    acoustic = await load_acoustic_model(settings)
    bucket = bucket_from_settings(settings) if records and recorder is None else None
    if settings.record_calls and settings.recording_format == "ogg":
        try:
            require_av()
        except OggUnavailable as exc:
            raise ConfigError(str(exc)) from None
    flow = Flow(agent.flow, tools) if agent is not None and agent.flow is not None else None
    secret = None
    if agent is not None and agent.results is not None and agent.results.webhook is not None:
        secret = agent.results.webhook.secret()
        if secret is None:
            raise ConfigError(f"agent {settings.agent_path}: results.webhook.secret_env: environment "
                              f"variable {agent.results.webhook.secret_env} is not set")
    router = router_from_settings(settings, engines or build_engines(settings))
    metrics = MetricsCollector()
    telemetry = telemetry or prometheus.default
    telemetry.attach(router, metrics)
    if settings.otel_enabled and tracing.setup_tracing(settings):
        metrics.listeners.append(tracing.record_turn)

    shared = SharedState.from_settings(settings)
    breaker_sync = None
    if shared.shared:
        breaker_sync = BreakerSync(router, shared.breakers)
        router.listeners.append(breaker_sync)
        await breaker_sync.start()
    calls = LiveCalls(limit=settings.max_concurrent_calls, telemetry=telemetry, redis=shared.redis)
    await calls.start()
    memory = MemoryReleaser(lambda: len(calls) > 0, settings.memory_trim_interval_s)
    await memory.start()
    loop_lag = LoopLagMonitor(telemetry.loop_lag, settings.loop_lag_interval_s)
    loop_lag.start()

    store: CallStore | None = None
    store_error: str | None = None
    workers: WorkerLedger | None = None
    if records and recorder is None:
        candidate = CallStore.from_settings(settings, bucket)
        try:
            await candidate.start()
            store = candidate
        except Exception as exc:  # noqa: BLE001 - records are worth less than calls
            store_error = f"{type(exc).__name__}: {exc}"
            log.error("call records are off: the database did not start: {}", store_error)
            await candidate.aclose()
    if store is not None and store.worker_id:
        workers = WorkerLedger(store, store.worker_id, heartbeat_s=settings.worker_heartbeat_s,
                               dead_after_s=settings.worker_dead_after_s)
        try:
            await workers.start()  # closes the calls a crashed predecessor left active
        except Exception as exc:  # noqa: BLE001 - recovery is worth less than taking calls
            log.error("crash recovery did not run: {}", exc)

    health = HealthMonitor(router, store=store, store_error=store_error,
                           shared=shared if shared.shared else None,
                           interval_s=settings.health_interval_s, timeout_s=settings.health_timeout_s,
                           max_error_rate=settings.health_max_error_rate,
                           min_calls=settings.health_min_calls)
    await health.start()
    results = None
    if agent is not None and agent.results is not None:
        results = CallResults(agent.results, agent.name, router, store,
                              retry_interval_s=settings.results_retry_interval_s,
                              backoff_s=settings.results_backoff_s,
                              max_attempts=settings.results_max_attempts, secret=secret,
                              telemetry=telemetry)
        results.start()
    recordings = None
    if settings.record_calls and (settings.recording_format == "ogg" or settings.recordings_bucket):
        if store is None:
            log.error("recordings stay WAVs on disk: finishing them needs the call store")
        else:
            recordings = RecordingArchive(
                recordings_dir(settings.data_dir), store, store.bucket, fmt=settings.recording_format,
                opus_kbps=settings.recording_opus_kbps, attempts=settings.recordings_upload_attempts,
                backoff_s=settings.recordings_upload_backoff_s, sweep_s=settings.recordings_sweep_s,
                telemetry=telemetry)
            recordings.start()
    return Services(settings=settings, router=router, metrics=metrics, telemetry=telemetry,
                    shared=shared, calls=calls, recorder=recorder or store or NullRecorder(),
                    store=store, store_error=store_error, health=health, sources=SourceLimiter(settings),
                    breaker_sync=breaker_sync, workers=workers, memory=memory, loop_lag=loop_lag, tools=tools, agent=agent,
                    acoustic=acoustic, flow=flow, results=results, recordings=recordings,
                    _owns_engines=owns_engines)
