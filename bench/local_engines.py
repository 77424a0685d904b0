"""The offline local engines on this CPU: one call, several turns, real voice-to-voice per stage.

Engines come from `sutradhar.engines.registry.build_engines(settings)` with the default settings
(STT local Whisper, LLM local GGUF then the responder, TTS Piper then espeak), warmed up as the
server warms them. The caller's turns are real speech (espeak-ng), passed through the phone path
first (8 kHz mu-law and back, resampled to 16 kHz, as the turn detector hands them to STT).

Two parts. In process, the orchestrator alone: per turn stt_ms, llm_ttft_ms, llm_ms, tts_ttfb_ms
(from the orchestrator's record) and v2v_ms = first ReplyAudio in the consumer's hands - end of
the utterance (no turn taking). Then the real server as shipped (`run_via_server`: TURN_POLICY,
SPECULATE, BACKCHANNELS at their defaults unless `turn_policy` says otherwise) and one simulated
Twilio caller: voice-to-voice from the caller's last spoken frame to the first agent frame, with
what the server heard, who answered (the script or the model) and its stage timings.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import summarize
from bench.scenario import TRANSCRIPTS

STAGES = ("stt_ms", "llm_ttft_ms", "llm_ms", "tts_ttfb_ms", "tts_ms", "v2v_ms")


def phone_utterances() -> list[tuple[str, bytes]]:
    """(text, PCM16 16 kHz) per scripted transcript, through 8 kHz mu-law like a phone call."""
    from bench.load import AUDIO_CACHE, CALLER_WPM
    from sutradhar.audio.codecs import (
        pcm16_to_ulaw,
        resample,
        ulaw_to_pcm16,
    )
    from sutradhar.testing.espeak_speech import espeak_pcm

    AUDIO_CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for text in TRANSCRIPTS:
        pcm, rate = espeak_pcm(text, "en-us", CALLER_WPM, cache=AUDIO_CACHE)
        phone = ulaw_to_pcm16(pcm16_to_ulaw(resample(pcm, rate, 8000)))
        out.append((text, resample(phone, 8000, 16000) + bytes(16000 * 2 // 5)))  # + 200 ms tail
    return out


async def run_local(turns: int = 4, models_dir: str | None = None) -> dict[str, Any]:
    from sutradhar.config import load_settings
    from sutradhar.engines.registry import build_engines
    from sutradhar.ops.prometheus import Telemetry
    from sutradhar.pipeline.orchestrator import ReplyAudio, TurnCompleted, Utterance
    from sutradhar.services import open_services

    overrides: dict[str, Any] = {"_env_file": None}
    if models_dir:
        overrides["models_dir"] = models_dir
    settings = load_settings(**overrides)
    engines = build_engines(settings)
    services = await open_services(settings, engines, records=False, telemetry=Telemetry())
    t0 = time.monotonic()
    await services.warm_up()
    warm_s = time.monotonic() - t0
    orch = services.new_orchestrator("bench-local")
    utterances = phone_utterances()
    rows = []
    cpu0 = time.process_time()
    for k in range(turns):
        text, pcm = utterances[k % len(utterances)]
        ended = time.monotonic()
        first = None
        record = None
        audio_s = 0.0
        async for event in orch.respond(Utterance(pcm, 16000, ended)):
            if type(event) is ReplyAudio:
                if first is None:
                    first = time.monotonic()
                audio_s += event.chunk.duration_s
            elif type(event) is TurnCompleted:
                record = event.record
        done = time.monotonic()
        timings = dict(record.timings) if record else {}
        row: dict[str, Any] = {"turn": k, "said": text, "heard": record.text if record else None,
                               "by": answered_by(timings),
                               "reply": record.reply if record else None,
                               "providers": dict(record.providers) if record else {},
                               "errors": list(record.errors) if record else [],
                               "client_v2v_ms": round((first - ended) * 1000, 1) if first else None,
                               "reply_audio_s": round(audio_s, 2), "turn_s": round(done - ended, 2),
                               **{s: timings.get(s) for s in STAGES}}
        stt, llm = timings.get("stt_ms"), timings.get("llm_ms")
        if first is not None and stt is not None and llm is not None:
            # first audio before the LLM finished (approximately: STT + LLM total, from the record)
            row["first_audio_before_llm_end"] = (first - ended) * 1000 < stt + llm
        if record is not None and record.reply:
            from bench.scenario import sentence_count

            row["reply_sentences"] = sentence_count(record.reply)
        rows.append(row)
    cpu = time.process_time() - cpu0
    await services.aclose()
    await engines.aclose()
    return {
        "engines": {"stt": [p.name for p in engines.stt], "llm": [p.name for p in engines.llm],
                    "tts": [p.name for p in engines.tts], "skipped": engines.skipped},
        "settings": {"whisper_model": settings.whisper_model, "llm_threads": getattr(settings, "llm_threads", None),
                     "llm_max_tokens": getattr(settings, "llm_max_tokens", None),
                     "end_of_turn_silence_ms": settings.end_of_turn_silence_ms},
        "warm_up_s": round(warm_s, 2),
        "turns": rows,
        "stages_ms": {s: summarize(r.get(s) for r in rows) for s in (*STAGES, "client_v2v_ms")},
        "process_cpu_s": round(cpu, 2),
    }


def run(turns: int, models_dir: str | None) -> dict[str, Any]:
    return asyncio.run(run_local(turns, models_dir))


# The script answers without a model call, so its first text comes within milliseconds; the
# model's first clause takes hundreds (prompt evaluation and a few tokens on one thread).
SCRIPT_TTFT_MS = 50.0


def answered_by(timings: dict[str, Any]) -> str | None:
    """"script" or "model": who wrote the turn's reply (from its LLM first-text time)."""
    ttft = timings.get("llm_ttft_ms")
    return None if ttft is None else ("script" if ttft < SCRIPT_TTFT_MS else "model")


def run_via_server(turns: int, models_dir: str | None, turn_policy: str | None = None,
                   src: str | None = None) -> dict[str, Any]:
    """The same engines behind the real server: one simulated Twilio call (bench.load's client),
    `turns` turns heard to the end, with the server's settings as shipped (`turn_policy`: another
    TURN_POLICY for the server and the caller's replay of its detector). Voice-to-voice as the
    caller sees it runs from their last spoken frame, so it includes the turn taking (the semantic
    policy's pause and early STT, or the silence window); the server's per-stage timings and what
    it heard come from /telephony/calls/{id}."""
    from bench.load import run_step
    from bench.scenario import Delays
    from sutradhar.config import load_settings

    plan = [{"phrase": i % len(TRANSCRIPTS)} for i in range(turns)]
    overrides = {"turn_policy": turn_policy} if turn_policy else {}
    shipped = load_settings(_env_file=None, **overrides)
    step = run_step(1, Delays(), turns, plan=plan, engines="default", models_dir=models_dir,
                    ready_timeout_s=180.0, settings=overrides, src=src,
                    server_env={"TURN_POLICY": turn_policy} if turn_policy else None)
    example = (step.get("examples") or [{}])[0]
    client = [{k: v for k, v in t.items() if k != "overhead_ms"} for t in example.get("turns", [])]
    server = example.get("server_turns", [])
    heard = example.get("server_heard", [])
    rows = []
    for k, turn in enumerate(client):
        timings = server[k] if k < len(server) else {}
        rows.append({**turn, **(heard[k] if k < len(heard) else {}), "by": answered_by(timings),
                     **{key: v for key, v in timings.items() if key != "server_overhead_ms"}})
    by_kind = {kind: summarize(r.get("v2v_ms") for r in rows if r["by"] == kind) for kind in ("script", "model")}
    return {
        "settings": {"turn_policy": shipped.turn_policy, "speculate": shipped.speculate,
                     "pause_ms": shipped.pause_ms, "speculate_pause_ms": shipped.speculate_pause_ms,
                     "end_of_turn_silence_ms": shipped.end_of_turn_silence_ms,
                     "backchannels": shipped.backchannels},
        "calls_completed": step["calls_completed"], "call_errors": step["call_errors"],
        "client_v2v_ms": step["v2v_ms"], "v2v_ms_by": by_kind, "eot_window_ms": step["eot_window_ms"],
        "server_stage_ms": {k: v for k, v in step["server_stage_ms"].items() if k != "server_overhead_ms"},
        "turns": rows,
        "pacing": step["pacing"], "cost": step["cost"], "server_probe": step.get("server_probe"),
    }
