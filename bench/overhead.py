"""Orchestration overhead, in process: many `AgentOrchestrator.respond` turns with scripted delays.

    overhead = (first ReplyAudio seen by the consumer - utterance end) - critical path of the delays

No server, no sockets, no VAD: this isolates what the orchestrator itself adds (router, language,
intents, context, chunker, the two queues between the LLM and TTS tasks, event objects) plus the
event loop's timer slack. Both are separated with a per-turn trace (see `bench.engines.TRACE`):

    pre_stt         utterance end -> STT called             (respond, router.route_transcription)
    stt_to_llm      STT returned -> LLM called             (language, intents, context, task start)
    token_to_tts    releasing token -> TTS called          (chunker, sentence queue, speak task)
    tts_to_consumer first TTS chunk -> consumer has it     (router stream, events queue)
    timer_slack     how late the scripted sleeps woke up   (event loop, not the orchestrator)

A bare-sleeps baseline (the same sleeps with nothing around them) shows the timer slack alone.
Concurrency C runs C orchestrators (C "calls") on one loop sharing one router, as the server does.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.common import summarize
from bench.scenario import (
    REPLIES,
    Delays,
    critical_path_ms,
    llm_total_ms,
    release_token_index,
    sentence_count,
    tokens,
)

COMPONENTS = ("pre_stt", "stt_to_llm", "token_to_tts", "tts_to_consumer", "timer_slack")


async def _build_services(d: Delays) -> Any:
    from bench.scenario import scripted_providers
    from sutradhar.config import load_settings
    from sutradhar.engines.registry import EngineSet
    from sutradhar.ops.prometheus import Telemetry
    from sutradhar.services import open_services

    settings = load_settings(stt=["scripted"], llm=["scripted"], tts=["scripted"], log_level="WARNING",
                             _env_file=None)
    stt, llm, tts = scripted_providers(d, trace=True)
    return await open_services(settings, EngineSet([stt], [llm], [tts]), records=False, telemetry=Telemetry())


def _analyse(trace: list[tuple[str, float]], d: Delays, k: int, reply: str) -> dict[str, Any]:
    t: dict[str, float] = {}
    for label, when in trace:
        t.setdefault(label, when)
    ms = 1000.0
    crit = critical_path_ms(d, reply)
    row: dict[str, Any] = {}
    first = t.get("first_audio")
    if first is None:
        return {"error": "no audio"}
    row["v2v_ms"] = (first - t["ended"]) * ms
    row["overhead_ms"] = row["v2v_ms"] - crit
    tok = t.get(f"tok{k}")
    if all(x in t for x in ("stt_start", "stt_end", "llm_start", "tts_start", "tts_first")) and tok:
        row["pre_stt"] = (t["stt_start"] - t["ended"]) * ms
        row["stt_to_llm"] = (t["llm_start"] - t["stt_end"]) * ms
        row["token_to_tts"] = (t["tts_start"] - tok) * ms
        row["tts_to_consumer"] = (first - t["tts_first"]) * ms
        row["timer_slack"] = ((t["stt_end"] - t["stt_start"]) * ms - d.stt_ms
                              + (tok - t["llm_start"]) * ms - (d.llm_first_token_ms + k * d.llm_token_ms)
                              + (t["tts_first"] - t["tts_start"]) * ms - d.tts_first_chunk_ms)
    last = t.get(f"tok{len(tokens(reply)) - 1}")
    if last is not None:  # the LLM has finished when its last token is out
        row["first_audio_before_llm_end"] = first < last
        row["multi_sentence"] = sentence_count(reply) > 1
    return row


async def _call(services: Any, index: int, turns: int, d: Delays, start_after: float,
                rows: list[dict[str, Any]], gap_s: float, full_turns: bool = False) -> None:
    from bench.engines import TRACE
    from sutradhar.pipeline.orchestrator import ReplyAudio, TurnCompleted, Utterance

    orch = services.new_orchestrator(f"bench-{index}")
    audio = bytes(16000 * 2)  # 1 s of PCM16 at 16 kHz; the scripted STT does not listen
    rng = random.Random(index)
    await asyncio.sleep(start_after)
    for _ in range(turns):
        trace: list[tuple[str, float]] = []
        token = TRACE.set(trace)
        record = None
        try:
            ended = time.monotonic()
            trace.append(("ended", ended))
            got_audio = False
            events = orch.respond(Utterance(audio, 16000, ended))
            async for event in events:
                if not got_audio and type(event) is ReplyAudio:
                    got_audio = True
                    trace.append(("first_audio", time.monotonic()))
                elif type(event) is TurnCompleted:
                    record = event.record
                elif not full_turns and got_audio and any(label == "llm_end" for label, _ in trace):
                    # Everything measured has happened; stop the TTS like a barge-in would
                    # (keeps a 100-turn run short: the rest of the reply is seconds of chunks).
                    await events.aclose()
                    record = orch.records.get(max(orch.records))
                    break
        finally:
            TRACE.reset(token)
        index = next((int(label.split(":")[1]) for label, _ in trace if label.startswith("reply:")), 0)
        reply = REPLIES[index]  # the reply this turn got (the shared scripted LLM cycles)
        row = _analyse(trace, d, release_token_index(reply), reply)
        if record is not None:
            row["record_v2v_ms"] = record.timings.get("v2v_ms")
            row["errors"] = len(record.errors)
        rows.append(row)
        await asyncio.sleep(gap_s * rng.random())


async def _bare_sleeps(d: Delays, turns: int) -> list[float]:
    """The critical path's sleeps with nothing around them: the event loop's own timer slack."""
    k = release_token_index(REPLIES[0])
    out = []
    for _ in range(turns):
        t0 = time.monotonic()
        await asyncio.sleep(d.stt_ms / 1000)
        await asyncio.sleep(d.llm_first_token_ms / 1000)
        for _ in range(k):
            await asyncio.sleep(d.llm_token_ms / 1000)
        await asyncio.sleep(d.tts_first_chunk_ms / 1000)
        out.append((time.monotonic() - t0) * 1000 - critical_path_ms(d))
    return out


async def run_level(d: Delays, concurrency: int, turns: int, gap_s: float = 0.05,
                    full_turns: bool = False) -> dict[str, Any]:
    """`concurrency` orchestrators on this loop, `turns` turns each; returns the summary."""
    services = await _build_services(d)
    rows: list[dict[str, Any]] = []
    turn_s = (critical_path_ms(d) + llm_total_ms(REPLIES[0], d)) / 1000
    spread = 0.0 if concurrency == 1 else turn_s
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(_call(services, i, turns, d, spread * i / concurrency, rows, gap_s, full_turns)
                           for i in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await services.aclose()
    return _summary(rows, concurrency, turns, cpu, wall)


def _summary(rows: list[dict[str, Any]], concurrency: int, turns: int, cpu: float, wall: float) -> dict[str, Any]:
    ok = [r for r in rows if "overhead_ms" in r]
    multi = [r for r in ok if r.get("multi_sentence")]
    return {
        "concurrency": concurrency,
        "turns_per_call": turns,
        "turns": len(rows),
        "failed_turns": len(rows) - len(ok),
        "v2v_ms": summarize(r["v2v_ms"] for r in ok),
        "overhead_ms": summarize(r["overhead_ms"] for r in ok),
        "record_v2v_ms": summarize(r.get("record_v2v_ms") for r in ok),
        "components_ms": {c: summarize(r.get(c) for r in ok) for c in COMPONENTS},
        "first_audio_before_llm_end": {
            "multi_sentence_turns": len(multi),
            "met": sum(1 for r in multi if r.get("first_audio_before_llm_end")),
        },
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 2),
        "cpu_ms_per_turn": round(cpu * 1000 / max(1, len(rows)), 3),
    }


async def run_all(d: Delays, levels: list[tuple[int, int]], baseline_turns: int,
                  full_turns: bool = False) -> dict[str, Any]:
    await run_level(d, 1, 2)  # warm-up: imports, lingua's models, first-call caches
    baseline = await _bare_sleeps(d, baseline_turns)
    results = []
    for concurrency, turns in levels:
        results.append(await run_level(d, concurrency, turns, full_turns=full_turns))
    return {"delays_ms": d.as_dict(), "critical_path_ms": critical_path_ms(d), "full_turns": full_turns,
            "timer_baseline_ms": summarize(baseline), "levels": results}


def quiet_logs(level: str = "WARNING") -> None:
    """Loguru writes every INFO line to stderr by default; a server configures its own sinks."""
    import os
    import sys

    from loguru import logger

    logger.remove()
    if level.upper() == "INFO-DEVNULL":  # format every line as the server would, write nowhere
        logger.add(open(os.devnull, "w"), level="INFO")  # noqa: SIM115
    else:
        logger.add(sys.stderr, level=level.upper())


def profile(d: Delays, levels: list[tuple[int, int]], kind: str, out_path: str) -> str:
    """Run the benchmark under cProfile or pyinstrument; write the report; return its top lines."""
    import io

    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        asyncio.run(run_all(d, levels, 1))
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
    else:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(run_all(d, levels, 1))
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("tottime").print_stats(40)
        buf.write("\n\n=== by cumulative time, sutradhar only ===\n")
        stats.sort_stats("cumulative").print_stats("sutradhar", 40)
        text = buf.getvalue()
    with open(out_path, "w") as fh:
        fh.write(text)
    return text
