"""`sutradhar bench turns`: turn-taking as the caller hears it, in four languages.

The real server (scripted engines on the 500 ms provider path; an oracle STT that answers what
the caller said so far) and simulated Twilio callers (one at a time, or `--calls N` saying each
item together), playing espeak-ng speech:
complete questions, unfinished phrases with a pause of 300 / 500 / 800 / 1,200 ms before the rest
(a number being read out), short answers, a backchannel over the agent's reply and a real
interruption. Everything is measured at the caller, from the last frame of their recorded speech.

Reported per configuration (the old fixed silence window, the semantic end of turn (the default) with a batch
STT, and with a streaming STT): voice-to-voice p50/p95, false cut-offs (a reply to half a
sentence), backchannel survival, the time from the start of a real interruption to silence, and
the server's CPU seconds per call-minute.

`--acoustic` adds the semantic configurations with Smart Turn v3 (TURN_ACOUSTIC_MODEL=smart-turn)
beside them, and the model's own cost per decision measured in-process on the corpus's en and hi
speech (wall and CPU ms, P(complete) for complete and unfinished phrases).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import summarize
from bench.scenario import Delays

PAUSES_MS = (300, 500, 800, 1200)
VOICES = {"en-IN": "en-us", "hi-IN": "hi", "te-IN": "te", "gu-IN": "gu"}
CORPUS: dict[str, dict[str, Any]] = {
    "en-IN": {"question": "What are your opening hours today?",
              "unfinished": ("my order number is", "four five six seven eight nine"),
              "short": "yes", "backchannel": "okay",
              "interruption": "Stop, stop. I want to ask about something else instead."},
    "hi-IN": {"question": "मेरा ऑर्डर कहाँ है?",
              "unfinished": ("मेरा ऑर्डर नंबर है", "चार पाँच छह सात आठ नौ"),
              "short": "हाँ", "backchannel": "हाँ जी",
              "interruption": "रुकिए रुकिए, मुझे कुछ और पूछना है, वो बताइए।"},
    "te-IN": {"question": "నా ఆర్డర్ ఎక్కడ ఉంది?",
              "unfinished": ("నా ఆర్డర్ నంబర్", "నాలుగు ఐదు ఆరు ఏడు ఎనిమిది"),
              "short": "అవును", "backchannel": "సరే",
              "interruption": "ఆగండి ఆగండి, నాకు వేరే విషయం అడగాలి, అది చెప్పండి."},
    "gu-IN": {"question": "મારો ઓર્ડર ક્યાં છે?",
              "unfinished": ("મારો ઓર્ડર નંબર", "ચાર પાંચ છ સાત આઠ નવ"),
              "short": "હા", "backchannel": "બરાબર",
              "interruption": "રોકો રોકો, મારે બીજી વાત પૂછવી છે, એ કહો."},
}
CONFIGS = {
    "silence 600 ms (the old default)": {"TURN_POLICY": "silence", "BACKCHANNELS": "false", "stt_streaming": 0},
    "semantic, batch STT": {"TURN_POLICY": "semantic", "BACKCHANNELS": "true", "stt_streaming": 0},
    "semantic, streaming STT": {"TURN_POLICY": "semantic", "BACKCHANNELS": "true", "stt_streaming": 1},
}
ACOUSTIC_CONFIGS = {
    "semantic + Smart Turn, batch STT": {"TURN_POLICY": "semantic", "BACKCHANNELS": "true", "stt_streaming": 0,
                                         "TURN_ACOUSTIC_MODEL": "smart-turn"},
    "semantic + Smart Turn, streaming STT": {"TURN_POLICY": "semantic", "BACKCHANNELS": "true",
                                             "stt_streaming": 1, "TURN_ACOUSTIC_MODEL": "smart-turn"},
}
ACOUSTIC_REPEATS = 10  # scores of each phrase, for the per-decision latency and CPU


def speech(text: str, language: str, cache: Path) -> bytes:
    """espeak-ng speech at 8 kHz (cached), as PCM16."""
    from sutradhar.audio.codecs import resample
    from sutradhar.testing.espeak_speech import espeak_pcm

    pcm, rate = espeak_pcm(text, VOICES[language], 160, cache=cache)
    return trim(resample(pcm, rate, 8000) if rate != 8000 else pcm)


def trim(pcm: bytes, margin_frames: int = 2) -> bytes:
    """Speech without espeak's leading and trailing silence, so a pause is exactly the pause."""
    import numpy as np

    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 300)
    if not len(loud):
        return pcm
    start, end = max(0, loud[0] - margin_frames), min(len(frames), loud[-1] + 1 + margin_frames)
    return pcm[start * 320:end * 320]


def voiced_s(pcm: bytes) -> float:
    """Seconds from the first to the last voiced 20 ms frame (what the turn detector keeps)."""
    import numpy as np

    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 300)
    return (loud[-1] - loud[0] + 1) * 0.02 if len(loud) else 0.0


@dataclass
class Item:
    kind: str
    language: str
    pause_ms: int | None
    turns: list[Any]
    prefixes: list[tuple[float, str]]
    full_text: str


def build_items(cache: Path) -> list[Item]:
    from sutradhar.audio.codecs import silence
    from sutradhar.testing.simulator import CallerTurn

    items: list[Item] = []
    pad = 0.4  # the detector keeps ~200 ms of pre-roll and ~200 ms of trailing silence
    for language, c in CORPUS.items():
        q = speech(c["question"], language, cache)
        items.append(Item("question", language, None, [CallerTurn(q, 8000)],
                          [(voiced_s(q) + pad, c["question"])], c["question"]))
        s = speech(c["short"], language, cache)
        items.append(Item("short answer", language, None, [CallerTurn(s, 8000)],
                          [(voiced_s(s) + pad, c["short"])], c["short"]))
        first, rest = (speech(t, language, cache) for t in c["unfinished"])
        full = " ".join(c["unfinished"])
        for pause in PAUSES_MS:
            pcm = first + silence(pause, 8000) + rest
            items.append(Item("unfinished + pause", language, pause, [CallerTurn(pcm, 8000)],
                              [(voiced_s(first) + pad, c["unfinished"][0]), (voiced_s(pcm) + pad, full)], full))
        b = speech(c["backchannel"], language, cache)
        items.append(Item("backchannel", language, None,
                          [CallerTurn(q, 8000), CallerTurn(b, 8000, barge_in_at=1.5)],
                          [(voiced_s(q) + pad, c["question"]), (voiced_s(b) + pad, c["backchannel"])],
                          c["question"]))
        i = speech(c["interruption"], language, cache)
        items.append(Item("interruption", language, None,
                          [CallerTurn(q, 8000), CallerTurn(i, 8000, barge_in_at=1.5)],
                          [(voiced_s(q) + pad, c["question"]), (voiced_s(i) + pad, c["interruption"])],
                          c["question"]))
    return items


def silenced_after(result: Any, start: float) -> float | None:
    """ms from `start` (the interruption's first voiced frame) to the last agent frame before
    the agent went quiet (a gap of more than 200 ms)."""
    times = [t for t, _ in result.frames if t >= start]
    if not times:
        return 0.0
    last = times[0]
    for t in times[1:]:
        if t - last > 0.2:
            break
        last = t
    return round((last - start) * 1000, 1)


async def run_item(url: str, item: Item, calls: int = 1) -> list[dict[str, Any]]:
    """`calls` callers say the same item at once (the oracle STT knows one item at a time)."""
    import httpx

    from sutradhar.testing.simulator import SimConfig, simulate

    async with httpx.AsyncClient() as client:
        await client.post(f"{url}/bench/item", json={"prefixes": item.prefixes})
    results = await asyncio.gather(*(simulate(SimConfig(
        url, item.turns, language=item.language, speed=1, timeout_s=60, gap_s=0.3, tail_s=1.0,
        reply_wait_s=20)) for _ in range(calls)))
    return [_row(item, result) for result in results]


def _row(item: Item, result: Any) -> dict[str, Any]:
    summary = result.summary or {}
    turns = summary.get("turns") or []
    row: dict[str, Any] = {"kind": item.kind, "language": item.language, "pause_ms": item.pause_ms}
    if item.kind in ("question", "short answer", "unfinished + pause"):
        row["v2v_ms"] = result.latencies_ms[-1] if result.latencies_ms else None
    if item.kind == "unfinished + pause":
        # a reply to half a sentence: more than one turn, or the turn holds only the first half
        row["cut_off"] = len(turns) != 1 or turns[0].get("text") != item.full_text
    if item.kind == "backchannel":
        row["survived"] = summary.get("barge_ins", 0) == 0 and len(turns) == 1
    if item.kind == "interruption":
        start = result.turns[1].speech_start if len(result.turns) > 1 else None
        row["silence_after_ms"] = silenced_after(result, start) if start else None
        row["stopped"] = summary.get("barge_ins", 0) >= 1
    return row


def acoustic_cost(cache: Path, log: Any = print) -> dict[str, Any]:
    """Smart Turn v3 in this process on the corpus's speech in the languages it covers, as the
    session hands it over (8 kHz, up to a 200 ms pause): ms per decision (wall and CPU) and
    P(complete) per phrase (complete turns should score high, unfinished first halves low)."""
    import time

    from sutradhar.audio.codecs import silence
    from sutradhar.audio.smart_turn import SmartTurn

    began = time.perf_counter()
    model = SmartTurn()
    load_s = time.perf_counter() - began
    walls, cpus, phrases = [], [], []
    for language, c in CORPUS.items():
        if not model.covers(language):
            continue
        for kind, text in (("complete", c["question"]), ("complete", c["short"]),
                           ("unfinished", c["unfinished"][0])):
            pcm = speech(text, language, cache) + silence(200, 8000)
            scores = []
            for _ in range(ACOUSTIC_REPEATS):
                wall, cpu = time.perf_counter(), time.process_time()
                scores.append(model.probability(pcm, 8000))
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            phrases.append({"language": language, "kind": kind, "text": text, "p_complete": round(scores[0], 3),
                            "judged_right": (scores[0] >= 0.5) == (kind == "complete")})
            log(f"  smart-turn {language} {kind}: p={scores[0]:.3f} {text}")
    right = sum(p["judged_right"] for p in phrases)
    return {"load_s": round(load_s, 2), "decision_ms": summarize(walls, 1),
            "cpu_ms_per_decision": summarize(cpus, 1), "phrases": phrases,
            "judged_right": f"{right}/{len(phrases)}"}


def run(d: Delays, log: Any = print, calls: int = 1, kinds: tuple[str, ...] = (),
        acoustic: bool = False) -> dict[str, Any]:
    """Every item of the corpus (or of `kinds`), each said by `calls` callers at once, under each
    configuration (with `acoustic`, also with Smart Turn v3, and the model's own cost); the
    server's CPU per call-minute beside the turn-taking figures."""
    import dataclasses
    import time

    import psutil

    from bench.bench_server import ServerProcess

    cache = Path(tempfile.gettempdir()) / "sutradhar-bench-turns"
    items = [i for i in build_items(cache) if not kinds or i.kind in kinds]
    out: dict[str, Any] = {"configs": {}, "delays_ms": d.as_dict(), "pauses_ms": list(PAUSES_MS),
                           "calls": calls, "kinds": sorted({i.kind for i in items})}
    # Replies of ~3 s (20 ms of audio a character): long enough to speak over at 1.5 s, short
    # enough that 96 calls take minutes, not half an hour.
    d = dataclasses.replace(d, tts_ms_per_char=min(d.tts_ms_per_char, 20.0))
    out["delays_ms"] = d.as_dict()
    if acoustic:
        out["acoustic_model"] = acoustic_cost(cache, log)
    for name, cfg in (CONFIGS | ACOUSTIC_CONFIGS if acoustic else CONFIGS).items():
        delays = dataclasses.replace(d, stt_streaming=cfg["stt_streaming"])
        env = {"BENCH_ORACLE_STT": "1", "TURN_POLICY": cfg["TURN_POLICY"], "BACKCHANNELS": cfg["BACKCHANNELS"],
               "TURN_ACOUSTIC_MODEL": cfg.get("TURN_ACOUSTIC_MODEL", "none")}
        log(f"--- {name} ---")
        rows = []
        with ServerProcess(delays, env=env) as server:
            proc = psutil.Process(server.proc.pid)
            cpu0, call_s = sum(proc.cpu_times()[:2]), 0.0
            for item in items:
                began = time.monotonic()
                batch = asyncio.run(run_item(server.url, item, calls))
                call_s += (time.monotonic() - began) * calls
                log(f"  {batch[0]}" if calls == 1 else f"  {item.kind} {item.language} {item.pause_ms}: "
                    f"{summarize_rows(batch)['v2v_ms']}")
                rows.extend(batch)
            cpu = sum(proc.cpu_times()[:2]) - cpu0
        summary = summarize_rows(rows)
        summary["cpu_s_per_call_minute"] = round(cpu / (call_s / 60), 3) if call_s else None
        out["configs"][name] = {"rows": rows, "summary": summary}
    return out


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def v2v(*kinds: str) -> list[float]:
        return [r["v2v_ms"] for r in rows if r.get("v2v_ms") is not None and r["kind"] in kinds]

    cut = {p: [r["cut_off"] for r in rows if r.get("pause_ms") == p] for p in PAUSES_MS}
    back = [r["survived"] for r in rows if "survived" in r]
    stop = [r["silence_after_ms"] for r in rows if r.get("silence_after_ms") is not None]
    return {"v2v_ms": summarize(v2v("question", "short answer"), 1),  # complete turns
            "v2v_after_digits_ms": summarize(v2v("unfinished + pause"), 1),  # ends reading a number
            "not_answered": sum(1 for r in rows if r["kind"] in ("question", "short answer")
                                and r.get("v2v_ms") is None),
            "cut_offs": {str(p): f"{sum(v)}/{len(v)}" for p, v in cut.items()},
            "backchannels_survived": f"{sum(back)}/{len(back)}",
            "interruption_to_silence_ms": summarize(stop, 1)}


def table(result: dict[str, Any]) -> str:
    from bench.common import table as render

    rows = []
    for name, c in result["configs"].items():
        s = c["summary"]
        rows.append([name, s["v2v_ms"]["p50"], s["v2v_ms"]["p95"], s["v2v_after_digits_ms"]["p50"],
                     " / ".join(s["cut_offs"][str(p)] for p in PAUSES_MS), s["backchannels_survived"],
                     s["interruption_to_silence_ms"]["p50"], s["interruption_to_silence_ms"]["max"],
                     s.get("cpu_s_per_call_minute")])
    text = render(rows, ["policy", "v2v p50, complete turns (ms)", "p95", "v2v p50 after digits",
                         "cut off at 300 / 500 / 800 / 1200 ms pauses", "backchannels that did not stop the agent",
                         "interruption -> silence p50 (ms)", "max", "server CPU-s per call-minute"])
    model = result.get("acoustic_model")
    if model:
        text += (f"\nSmart Turn v3 per decision (in-process, 8 kHz, 1 thread): {model['decision_ms']['p50']} ms "
                 f"p50 / {model['decision_ms']['p95']} ms p95 wall, {model['cpu_ms_per_decision']['p50']} ms CPU; "
                 f"judged {model['judged_right']} en/hi phrases right; loaded in {model['load_s']} s")
    return text
