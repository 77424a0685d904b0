"""The per-turn provider path alone, for A/B runs of its cost: the real OpenAI-compatible engines
against a running bench/provider_server.py (delays 0), `--turns` turns at `--concurrency`, each turn
one STT upload, one streamed chat reply, and TTS per sentence of it resampled 24 -> 8 kHz and
mu-law encoded as the session does. Prints this process's CPU seconds per turn.

    python -m bench.provider_server --port 8766 --stt-ms 0 --llm-first-token-ms 0 --llm-token-ms 0 \\
        --tts-first-chunk-ms 0 --tts-chunk-ms 0 &
    farm-bench -n 5 -- python -m bench.provider_path --url http://127.0.0.1:8766/v1

Logging is set up as `sutradhar serve` does (LOG_LEVEL=WARNING), so what the engines' libraries
log per request is in the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def _run(url: str, turns: int, concurrency: int) -> dict[str, float]:
    from bench.scenario import TRANSCRIPTS
    from sutradhar.audio.codecs import StreamResampler, pcm16_to_ulaw
    from sutradhar.engines.base import Message
    from sutradhar.engines.openai.compat import (
        OPENAI_TTS_RATE,
        OpenAIChat,
        OpenAISTT,
        OpenAITTS,
    )
    from sutradhar.text.sentences import SentenceChunker

    stt = OpenAISTT(base_url=url, api_key="sk-bench")
    llm = OpenAIChat(base_url=url, api_key="sk-bench")
    tts = OpenAITTS(base_url=url, api_key="sk-bench")
    utterance = bytes(16000 * 2 * 3)  # 3 s at 16 kHz, as the turn detector hands it to STT
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(turns):
        queue.put_nowait(i)

    async def turn(i: int) -> None:
        heard = await stt.transcribe(utterance, 16000, "en-IN")
        messages = [Message("user", TRANSCRIPTS[i % len(TRANSCRIPTS)] or heard.text)]
        chunker = SentenceChunker()
        sentences: list[str] = []
        async for token in llm.stream(messages, "en-IN"):
            sentences += chunker.push(token)
        sentences += chunker.flush()
        for sentence in sentences:
            resampler = StreamResampler(OPENAI_TTS_RATE, 8000, "LQ")
            async for chunk in tts.synthesize(sentence, "en-IN"):
                pcm16_to_ulaw(resampler.process(chunk.pcm))
            pcm16_to_ulaw(resampler.process(b"", last=True))

    async def worker() -> None:
        while not queue.empty():
            await turn(queue.get_nowait())

    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    for engine in (stt, llm, tts):
        await engine.aclose()
    return {"turns": turns, "cpu_ms_per_turn": round(cpu * 1000 / turns, 3), "wall_s": round(wall, 2)}


def main(argv: list[str] | None = None) -> int:
    from bench.common import use_uvloop
    from sutradhar.config import load_settings
    from sutradhar.ops.logs import setup_logging

    p = argparse.ArgumentParser(prog="provider_path", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the provider's base URL, ending in /v1")
    p.add_argument("--turns", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=30)
    args = p.parse_args(argv)
    setup_logging(load_settings(_env_file=None, log_level="WARNING"))
    use_uvloop()
    print(asyncio.run(_run(args.url, args.turns, args.concurrency)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
