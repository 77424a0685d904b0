"""All configuration, from environment variables and an optional `.env`, validated at start.

Names are unprefixed and case-insensitive: `STT=sarvam`, `TTS=sarvam,espeak`, `SARVAM_API_KEY=...`.
A bad value fails at start with one message naming every problem, never in the middle of a call.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sutradhar.errors import ConfigError

__all__ = ["ConfigError", "Settings", "load_settings"]

CSV = Annotated[list[str], NoDecode]
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, friendly voice assistant on a phone call. Answer in one to three short "
    "spoken sentences. Never use lists, markdown or emoji."
)


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- server ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str = ""  # https://voice.example.com; wss:// is derived for media streams
    data_dir: Path = Path("./data")
    max_concurrent_calls: int = Field(200, ge=1)  # per worker
    workers: int = Field(0, ge=0, le=64)  # `serve` processes sharing the port; 0: one per core
    max_message_bytes: int = Field(256 * 1024, ge=1024)
    admin_token: str = ""
    browser_token: str = ""

    # --- stream admission (telephony/admission.py, docs/security.md) ---
    # Single-use tokens the answer webhook gives each media stream: auto = Twilio when
    # TWILIO_AUTH_TOKEN is set; required = Twilio, Plivo and Exotel; off = never (static TwiML).
    stream_tokens: str = "auto"
    stream_token_ttl_s: float = Field(60.0, ge=5, le=600)
    start_timeout_s: float = Field(5.0, gt=0)  # a media socket must send `start` within this
    first_media_timeout_s: float = Field(5.0, gt=0)  # ... and its first audio within this after it
    max_streams_per_source: int = Field(50, ge=0)  # open media sockets per client IP per worker; 0: no limit
    source_limit_exempt: CSV = ["127.0.0.0/8", "::1/128"]  # networks the per-source limit skips
    trusted_proxies: CSV = []  # peers whose X-Forwarded-For names the real client
    inbound_max_speed: float = Field(1.5, ge=0)  # caller audio faster than this x real time is dropped; 0: off
    inbound_burst_s: float = Field(2.0, gt=0, le=60)  # early audio allowed for network jitter
    flood_close_s: float = Field(5.0, gt=0)  # dropped audio (draining at 1/10 real time) that ends the call

    # --- engines: ordered fallback chains per stage ---
    stt: CSV = ["local"]
    llm: CSV = ["local", "responder"]
    tts: CSV = ["piper", "espeak"]
    stt_timeout_s: float = Field(15.0, gt=0)
    llm_timeout_s: float = Field(15.0, gt=0)
    tts_timeout_s: float = Field(20.0, gt=0)
    retry_attempts: int = Field(2, ge=1, le=10)
    retry_backoff_s: float = Field(0.2, ge=0)
    breaker_failure_threshold: int = Field(3, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)  # open -> half-open trial when probes are off
    # An open breaker is probed in the background with a real cheap request every this often; the
    # first answer closes it (0: no probes, a live turn is the half-open trial after the reset).
    breaker_probe_interval_s: float = Field(5.0, ge=0, le=300)
    breaker_probe_timeout_s: float = Field(5.0, gt=0, le=60)
    # From the end of the caller's speech to the first audio they hear: provider attempts share
    # what is left of it, and a spent budget plays the apology (0: no budget, stage timeouts only).
    turn_budget_s: float = Field(2.5, ge=0, le=60)
    apology_audio: bool = True  # synthesise the apology lines at start-up, for when TTS fails

    # --- conversation ---
    default_language: str = "en-IN"
    languages: CSV = ["te-IN", "hi-IN", "en-IN", "gu-IN"]  # IVR menu order: digit 1 is the first
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_history: int = Field(10, ge=1)
    max_context_chars: int = Field(0, ge=0)  # 0: no character budget
    switch_threshold: int = Field(2, ge=1)
    min_turns_before_switch: int = Field(1, ge=0)

    # --- the agent: an agent.yaml (`serve --agent FILE`) and the tools the LLM may call ---
    agent_path: str = ""  # its languages and tools replace LANGUAGES, DEFAULT_LANGUAGE and TOOLS
    # Built-in and packaged tools by name; empty: the LLM is offered none (the old path exactly).
    tools: CSV = ["end_call", "transfer_to_human", "switch_language", "order_status"]
    tool_webhooks_path: str = ""  # YAML of HTTP webhook tools (agents/webhooks.py)
    tool_timeout_s: float = Field(5.0, gt=0, le=60)  # per call, unless the tool sets its own
    tool_filler_ms: int = Field(400, ge=0, le=10000)  # tools slower than this get one filler line
    # Start a tool the caller's words settle (one declaring a prefetch rule, idempotent) alongside
    # LLM round 1; off: every tool waits for the LLM to ask (agents/prefetch.py).
    tool_prefetch: bool = True
    # Post-call results (an agent file's `results:`): webhook deliveries that failed are retried
    # by a periodic job, the wait doubling from RESULTS_BACKOFF_S, at most RESULTS_MAX_ATTEMPTS.
    results_retry_interval_s: float = Field(30.0, gt=0, le=3600)
    results_backoff_s: float = Field(10.0, gt=0, le=3600)
    results_max_attempts: int = Field(12, ge=1, le=100)

    # --- turn taking ---
    vad: str = "webrtc"  # webrtc | silero
    vad_energy_floor: float = Field(150.0, ge=0)  # RMS below which a frame is silence (0: VAD only)
    vad_aggressiveness: int = Field(2, ge=0, le=3)
    end_of_turn_silence_ms: int = Field(600, ge=100)  # the plain window (TURN_POLICY=silence)
    # semantic: at a short pause, decide from what the caller said (pipeline/turn_policy.py):
    # a complete turn is answered at PAUSE_MS, an unfinished one waits up to END_OF_TURN_MAX_MS.
    turn_policy: str = "semantic"
    pause_ms: int = Field(200, ge=60)
    end_of_turn_max_ms: int = Field(1500, ge=200)
    end_of_turn_number_ms: int = Field(800, ge=100)  # after digits that may still be going on
    speculate: bool = True  # semantic: prepare the reply (held back) while the policy waits
    # semantic: the early STT (or the streaming STT's interim) and, with SPECULATE, the held-back
    # reply start at this shorter pause, so they are ready when the turn ends at PAUSE_MS.
    speculate_pause_ms: int = Field(100, ge=40)
    # semantic, optional: Smart Turn v3 also hears each pause in en/hi (the smartturn extra). Text
    # complete or unknown but P(complete) < TURN_ACOUSTIC_THRESHOLD: wait TURN_ACOUSTIC_WAIT_MS.
    turn_acoustic_model: str = "none"  # none | smart-turn
    turn_acoustic_threshold: float = Field(0.5, ge=0, le=1)
    turn_acoustic_wait_ms: int = Field(1000, ge=100)  # capped at END_OF_TURN_MAX_MS
    min_speech_ms: int = Field(200, ge=0)
    max_utterance_s: float = Field(30.0, gt=0)
    barge_in_min_speech_ms: int = Field(120, ge=20)
    # Caller speech while the agent talks first pauses the reply; a backchannel ("hmm", "haan"),
    # a cough or speech shorter than BACKCHANNEL_MAX_MS resumes it, longer speech interrupts.
    backchannels: bool = True
    backchannel_max_ms: int = Field(700, ge=100)
    inactivity_timeout_s: float = Field(300.0, gt=0)
    # Agent audio frames queued back to back leave as one media message of up to this long
    # (audio/playout.py): fewer, longer messages cost the server less per call-minute. 20: one
    # message per 20 ms frame. Exotel's messages are 100 ms whatever this says.
    playout_message_ms: int = Field(100, ge=20, le=1000)

    # --- DTMF during a call ---
    dtmf_human: str = "0"
    dtmf_repeat: str = "*"
    transfer_number: str = ""

    # --- Twilio ---
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    twilio_from_number: str = ""  # E.164 caller id of outbound calls (a number on the account)
    # --- Exotel: when set, the media socket must carry these as Basic auth (wss://KEY:TOKEN@host/...) ---
    exotel_api_key: str = ""
    exotel_api_token: str = ""
    # Outbound Exotel calls (Calls/connect): the account SID, the ExoPhone they come from, and the
    # flow (App Bazaar app id) whose Voicebot applet streams to /exotel/stream.
    exotel_sid: str = ""
    exotel_caller_id: str = ""
    exotel_app_id: str = ""
    exotel_api_base: str = "https://api.in.exotel.com"  # Mumbai; https://api.exotel.com is Singapore
    # --- Plivo ---
    plivo_auth_id: str = ""
    plivo_auth_token: str = ""
    plivo_api_base: str = "https://api.plivo.com"
    plivo_caller_id: str = ""  # E.164 caller id of outbound Plivo calls (a number on the account)

    # --- outbound campaigns (campaigns/; SOP 1.9): defaults a campaign may override ---
    campaign_concurrency: int = Field(2, ge=1, le=500)  # calls of one campaign in flight at once
    campaign_max_attempts: int = Field(3, ge=1, le=20)  # per number, counting the first
    campaign_retry_delay_s: float = Field(1800.0, ge=0, le=7 * 86400)  # after busy/no-answer/failed
    campaign_retry_backoff: float = Field(2.0, ge=1, le=10)  # each further retry waits this much longer
    campaign_calling_hours: str = "09:00-21:00"  # local time of each number (its row's tz or the campaign's)
    campaign_timezone: str = "Asia/Kolkata"
    campaign_dnc_file: str = ""  # one number per line, never dialled (with the do_not_call table)
    campaign_poll_s: float = Field(2.0, gt=0, le=60)  # the runner's tick when no status callback wakes it
    # A number dialled whose carrier never reported a final status within this is `unknown`:
    # never dialled again automatically (the call may have connected).
    campaign_call_timeout_s: float = Field(3600.0, gt=0, le=86400)
    # --- answering machines on outbound calls (telephony/voicemail.py, telephony/screening.py) ---
    # Our own detector holds the greeting until it decides (human: greet at once); a machine is
    # hung up on or left a message, as the agent file's `voicemail:` says (else VOICEMAIL_ACTION).
    amd_enabled: bool = True
    voicemail_action: Literal["hang_up", "leave_message"] = "hang_up"
    amd_long_greeting_ms: int = Field(3500, ge=1000, le=15000)  # continuous speech: a machine
    amd_short_answer_ms: int = Field(1500, ge=200, le=5000)  # then silence: a person
    amd_max_gap_ms: int = Field(700, ge=200, le=3000)  # pauses inside one greeting
    amd_decision_ms: int = Field(5000, ge=1000, le=20000)  # undecided: greet anyway
    amd_message_silence_ms: int = Field(1200, ge=300, le=10000)  # no beep: greeting over, line quiet
    amd_beep_wait_s: float = Field(30.0, ge=1, le=120)  # leave the message by then, beep or not
    # Twilio's own AMD, asked for on each outbound call (AsyncAmd; result on /twilio/amd):
    # Enable (human or machine, fast), DetectMessageEnd (waits for the beep), or off.
    twilio_machine_detection: Literal["Enable", "DetectMessageEnd", "off"] = "Enable"

    # --- Sarvam ---
    sarvam_api_key: str = ""
    sarvam_base_url: str = "https://api.sarvam.ai"
    sarvam_ws_url: str = ""  # defaults to the wss form of sarvam_base_url
    sarvam_stt_model: str = "saaras:v3"
    sarvam_stt_streaming: bool = False  # STT=sarvam over the older /speech-to-text/ws, per utterance
    # STT=sarvam-realtime: /speech-to-text-realtime/ws while the caller speaks (saaras:v3-realtime
    # or saaras:v4, per sarvamai 0.1.39)
    sarvam_stt_realtime_model: str = "saaras:v3-realtime"
    sarvam_stt_realtime_detect: bool = True  # language_code=auto, so language switches are heard
    sarvam_tts_model: str = "bulbul:v2"
    sarvam_tts_streaming: bool = False
    sarvam_tts_sample_rate: int = 8000  # 8000 | 16000 | 22050 | 24000; 8 kHz suits telephony
    sarvam_tts_speaker: str = ""  # empty: the language registry's voice for the model
    sarvam_llm_model: str = "sarvam-105b-conversations"
    sarvam_reasoning_effort: str = ""  # empty: sent as null (no reasoning, lowest latency); or low

    # --- OpenAI-compatible (one base URL per stage; empty falls back to openai_base_url) ---
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    openai_llm_model: str = "gpt-4o-mini"
    openai_stt_base_url: str = ""
    openai_stt_model: str = "whisper-1"
    openai_tts_base_url: str = ""
    openai_tts_model: str = "tts-1"
    openai_tts_voice: str = "alloy"

    # --- Deepgram (live streaming STT over WebSocket, batch over REST) ---
    deepgram_api_key: str = ""
    deepgram_base_url: str = "https://api.deepgram.com"  # the WebSocket is its ws(s):// form
    deepgram_model: str = "nova-3"

    # --- offline local engines ---
    # Where scripts/prepare_models.py puts joined model files: the checkout's models/ by default,
    # so the server finds them whatever directory it is started from.
    models_dir: Path = Path(__file__).resolve().parents[2] / "models"
    whisper_model: str = "tiny.en"  # tiny.en (packaged), base (packaged, multilingual) or a directory
    whisper_languages: CSV = []  # languages a custom model directory serves; empty: the model's own
    # Chosen by `sutradhar bench stt` on phone-band speech (README, Performance): beam search costs
    # more than it gains within the STT budget; the prompt's domain words cut a third of the errors.
    whisper_beam_size: int = Field(1, ge=1, le=10)
    # Words English callers are likely to say, written as Whisper should write them; empty: none.
    whisper_prompt: str = Field("Caller to a shop: order status, order number 4 5 6 7, refund, shipped, "
                                "delivery, appointment, book, cancel, opening hours, Monday, Sunday.",
                                max_length=800)
    llm_model_path: str = ""  # a GGUF file; empty: the packaged Qwen2.5 0.5B when installed
    llm_languages: CSV = ["en-IN"]
    llm_max_tokens: int = Field(120, ge=8)  # every LLM's cap; the local model's own is in local_llm.yaml
    # One thread: STT and TTS run on the other core (Piper speaks clause one while the model
    # writes clause two); on a busy 2-core box two llama.cpp threads ran 2-5x slower than one.
    llm_threads: int = Field(1, ge=1)
    responder_path: str = ""  # YAML of scripted replies; empty: the packaged one
    piper_voice: str = ""  # an .onnx voice; empty: the packaged English voice

    # --- operations ---
    database_url: str = ""  # empty: SQLite under data_dir
    redis_url: str = ""
    retention_days: int = Field(0, ge=0)
    # Record every call as a stereo WAV (caller left, agent right) under DATA_DIR/recordings, with a
    # consent line before the greeting; RETENTION_DAYS deletes them with their call records.
    record_calls: bool = False
    # wav: the live file as it is. ogg: re-encoded as Opus in OGG (RECORDING_OPUS_KBPS) once the
    # call ends; the live file stays a WAV, so a crash still loses at most a second.
    recording_format: Literal["wav", "ogg"] = "wav"
    # Below 32 kbit/s Opus narrows the stereo image, and the agent leaks into the caller's channel.
    recording_opus_kbps: int = Field(32, ge=32, le=256)
    # s3://bucket/prefix: a finished call's recording is uploaded there in the background and the
    # local file removed once the bucket holds it. Credentials: the standard AWS variables. The
    # prefix is capped so that the object's URL fits the call record's recording_path.
    recordings_bucket: str = Field("", pattern=r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.{0,70})?)?$")
    recordings_s3_endpoint_url: str = ""  # MinIO, R2, ...; empty: AWS S3
    recordings_s3_region: str = ""  # empty: AWS_REGION / AWS_DEFAULT_REGION / the profile's
    recordings_upload_attempts: int = Field(5, ge=1, le=100)  # per upload, with doubling backoff
    recordings_upload_backoff_s: float = Field(2.0, gt=0, le=600)
    # Recordings left on disk (a crash, a bucket that stayed down) are finished by a sweep at
    # start-up and this often.
    recordings_sweep_s: float = Field(300.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = False
    redact_phone_numbers: bool = True
    otel_enabled: bool = False
    health_interval_s: float = Field(30.0, gt=0)  # background provider/database/Redis checks
    health_timeout_s: float = Field(5.0, gt=0)
    # SIGTERM: stop admitting calls, let live ones finish for DRAIN_TIMEOUT_S, then say the
    # `drained` line in each call's language (at most DRAIN_GOODBYE_S) and hang up.
    drain_timeout_s: float = Field(45.0, ge=0)
    drain_goodbye_s: float = Field(8.0, ge=0)
    # Crash recovery: each worker beats in the call store; one silent for WORKER_DEAD_AFTER_S is
    # lost, and a live worker closes its calls as server_lost.
    worker_heartbeat_s: float = Field(5.0, gt=0)
    worker_dead_after_s: float = Field(20.0, gt=0)
    # /health judges each provider by its live calls over this window (and at most this many calls):
    # at HEALTH_MAX_ERROR_RATE or more errors and timeouts, over at least HEALTH_MIN_CALLS, it is
    # degraded until a live call or a probe succeeds.
    health_window_s: float = Field(300.0, gt=0)
    health_window_calls: int = Field(100, ge=1, le=10000)
    health_max_error_rate: float = Field(0.5, gt=0, le=1)
    health_min_calls: int = Field(3, ge=1)
    # While no call is live, return the heap pages finished calls and sockets freed to the OS this
    # often (glibc malloc_trim; RSS otherwise stays at the peak). 0 turns it off.
    memory_trim_interval_s: float = Field(10.0, ge=0, le=3600)
    # How often each worker measures its event loop's lag (sutradhar_event_loop_lag_seconds,
    # ops/loop_lag.py). 0 turns it off.
    loop_lag_interval_s: float = Field(0.05, ge=0, le=10)
    # The console's "slow turns" filter and highlight: voice-to-voice on the wire above this.
    console_slow_turn_ms: float = Field(1500.0, gt=0, le=60_000)

    _split = field_validator("stt", "llm", "tts", "languages", "whisper_languages", "llm_languages",
                             "source_limit_exempt", "trusted_proxies", "tools", mode="before")(_csv)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return value

    @field_validator("turn_policy")
    @classmethod
    def _turn_policy(cls, value: str) -> str:
        if value not in {"silence", "semantic"}:
            raise ValueError(f"TURN_POLICY must be silence or semantic, not {value!r}")
        return value

    @field_validator("turn_acoustic_model")
    @classmethod
    def _turn_acoustic_model(cls, value: str) -> str:
        value = value.lower()
        if value not in {"none", "smart-turn"}:
            raise ValueError(f"TURN_ACOUSTIC_MODEL must be none or smart-turn, not {value!r}")
        return value

    @field_validator("stream_tokens")
    @classmethod
    def _stream_tokens(cls, value: str) -> str:
        value = value.lower()
        if value not in {"auto", "required", "off"}:
            raise ValueError(f"STREAM_TOKENS must be auto, required or off, not {value!r}")
        return value

    @field_validator("source_limit_exempt", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("inbound_max_speed")
    @classmethod
    def _inbound_speed(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError("INBOUND_MAX_SPEED below 1 would drop a real-time caller's audio (0 turns it off)")
        return value

    @field_validator("vad")
    @classmethod
    def _vad(cls, value: str) -> str:
        if value not in {"webrtc", "silero"}:
            raise ValueError(f"VAD must be webrtc or silero, not {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        from sutradhar.campaigns.hours import campaign_problems
        from sutradhar.engines.registry import problems as engine_problems
        from sutradhar.telephony.numbers import E164
        from sutradhar.text.languages import LANGUAGES

        problems = engine_problems(self)
        for code in [*self.languages, self.default_language]:
            if code not in LANGUAGES:
                problems.append(f"unknown language {code!r} (known: {', '.join(sorted(LANGUAGES))})")
        if self.default_language not in self.languages:
            problems.append(f"DEFAULT_LANGUAGE {self.default_language} is not in LANGUAGES")
        for name in ("twilio_from_number", "plivo_caller_id"):
            if getattr(self, name) and not E164.fullmatch(getattr(self, name)):
                problems.append(f"{name.upper()} {getattr(self, name)!r} is not an E.164 number")
        problems += campaign_problems(self.campaign_calling_hours, self.campaign_timezone)
        if self.amd_short_answer_ms >= self.amd_long_greeting_ms:
            problems.append(f"AMD_SHORT_ANSWER_MS ({self.amd_short_answer_ms}) must be below "
                            f"AMD_LONG_GREETING_MS ({self.amd_long_greeting_ms})")
        if bool(self.twilio_account_sid) != bool(self.twilio_auth_token) and self.twilio_account_sid:
            problems.append("TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is empty")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'sutradhar.db'}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and overrides), or raise one readable ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where.upper() if where != 'settings' else where}: {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
