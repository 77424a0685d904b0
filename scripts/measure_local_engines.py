"""Measure the offline engines on this machine: the numbers quoted in the README.

    python scripts/measure_local_engines.py

Whisper real-time factor (tiny.en and base, on an espeak-ng English sentence), Piper and espeak-ng
first-chunk latency, and the local LLM's time to first token and tokens per second. Each figure is
the median of a few warm runs (models loaded once beforehand, as in a running server).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sutradhar.audio.codecs import read_wav_file  # noqa: E402
from sutradhar.config import load_settings  # noqa: E402
from sutradhar.engines.base import Message  # noqa: E402
from sutradhar.engines.local.espeak import EspeakTTS  # noqa: E402
from sutradhar.engines.local import default_gguf  # noqa: E402
from sutradhar.engines.local.whisper import LocalSTT, resolve_whisper_model  # noqa: E402
from sutradhar.engines.local.piper import PiperTTS, packaged_voice  # noqa: E402

RUNS = 3
SENTENCE = "Hello, I would like to know the status of my order. It was placed last Tuesday."
REPLY = "Your order has been shipped. It should reach you within two days."


async def whisper(name: str) -> None:
    model_dir, languages, multilingual = resolve_whisper_model(name, load_settings().models_dir)
    if not (model_dir / "model.bin").exists():
        print(f"whisper {name}: not prepared")
        return
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), SENTENCE], check=True)
        pcm, rate = read_wav_file(str(wav))
    stt = LocalSTT(model_dir=model_dir, languages=languages, multilingual=multilingual)
    await stt.warm_up()
    seconds = len(pcm) / 2 / rate
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await stt.transcribe(pcm, rate, "en-IN")
        times.append(time.perf_counter() - started)
    took = statistics.median(times)
    print(f"whisper {name}: {seconds:.1f} s of audio in {took:.2f} s, real-time factor {took / seconds:.2f}")


async def first_chunk(tts: object, language: str, label: str) -> None:
    firsts, totals, audio = [], [], 0.0
    for _ in range(RUNS):
        started, first, audio = time.perf_counter(), None, 0.0
        async for chunk in tts.synthesize(REPLY, language):  # type: ignore[attr-defined]
            first = first if first is not None else time.perf_counter() - started
            audio += chunk.duration_s
        firsts.append(first or 0.0)
        totals.append(time.perf_counter() - started)
    print(f"{label}: first chunk {statistics.median(firsts) * 1000:.0f} ms, "
          f"{audio:.1f} s of audio in {statistics.median(totals) * 1000:.0f} ms")


async def llm() -> None:
    path = default_gguf(load_settings())
    if not path.is_file():
        print(f"llm: no GGUF at {path}")
        return
    from sutradhar.engines.local.llama import LocalLLM

    model = LocalLLM(model_path=path, max_tokens=80)
    await model.warm_up()
    firsts, rates = [], []
    for question in ("What is the capital of France?", "How do I reset my password?",
                     "Tell me about the weather in Mumbai in July."):
        messages = [Message("system", "You are a helpful voice assistant on a phone call. Answer "
                                      "in one to three short spoken sentences."),
                    Message("user", question)]
        started, first, count = time.perf_counter(), 0.0, 0
        async for _ in model.stream(messages, "en-IN"):
            count += 1
            first = first or time.perf_counter() - started
        total = time.perf_counter() - started
        firsts.append(first)
        if count > 1:
            rates.append((count - 1) / (total - first))
    await model.aclose()
    print(f"llm {path.name}: first token {statistics.median(firsts) * 1000:.0f} ms, "
          f"{statistics.median(rates):.1f} tokens/s")


async def main() -> None:
    await whisper("tiny.en")
    await whisper("base")
    voice = packaged_voice()
    if voice is not None:
        piper = PiperTTS(voice_path=voice)
        await piper.warm_up()
        await first_chunk(piper, "en-IN", "piper en-IN")
    for backend in ("library", "binary"):
        await first_chunk(EspeakTTS(backend=backend), "hi-IN", f"espeak-ng ({backend}) hi-IN")
    await llm()


if __name__ == "__main__":
    asyncio.run(main())
