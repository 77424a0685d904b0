"""RECORDING_FORMAT=ogg: what re-encoding one minute of a call costs, and what it saves.

    python -m bench.recording_ogg [--kbps 32] [--rate 8000]

A one-minute stereo call at the wire rate (espeak speech, caller and agent taking turns; noise
bursts when espeak is missing) encoded as the archive does it (audio/ogg_opus.py): file sizes,
CPU seconds, and the worst event-loop delay while the encode runs in a thread, as it does after
a real call beside live ones.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ensure_src_on_path, write_result

ensure_src_on_path()

from sutradhar.audio.ogg_opus import wav_to_ogg_opus  # noqa: E402
from sutradhar.telephony.recording import wav_header  # noqa: E402

LINES = ("What is my account balance?", "Your balance is five hundred rupees.",
         "When is my next payment due?", "Your next payment is due on the fifth of March.")


def _speech(text: str, rate: int) -> np.ndarray | None:
    from sutradhar.audio.codecs import resample
    from sutradhar.testing.espeak_speech import espeak_pcm

    try:
        pcm, source_rate = espeak_pcm(text)
    except (OSError, RuntimeError, subprocess.CalledProcessError):
        return None
    return np.frombuffer(resample(pcm, source_rate, rate), dtype="<i2")


def call_audio(rate: int, seconds: float = 60.0) -> np.ndarray:
    n = int(rate * seconds)
    frames = np.zeros((n, 2), dtype="<i2")
    rng = np.random.default_rng(0)
    at, turn = 0, 0
    while at < n:
        line = _speech(LINES[turn % len(LINES)], rate)
        if line is None:
            line = np.clip(rng.normal(0, 3000, 2 * rate), -32000, 32000).astype("<i2")
        piece = line[: n - at]
        frames[at:at + len(piece), turn % 2] = piece
        at += len(piece) + rate // 2
        turn += 1
    frames += rng.normal(0, 30, frames.shape).astype("<i2")  # line noise on both sides
    return frames


async def _lag_while(job: asyncio.Future) -> float:
    worst = 0.0
    while not job.done():
        began = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - began - 0.005)
    await job
    return worst


async def measure(rate: int, kbps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        wav, ogg = Path(tmp) / "call.wav", Path(tmp) / "call.ogg"
        frames = call_audio(rate)
        wav.write_bytes(wav_header(rate, frames.nbytes) + frames.tobytes())
        cpu, wall = time.process_time(), time.perf_counter()
        wav_to_ogg_opus(wav, ogg, kbps)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        ogg.unlink()
        lag = await _lag_while(asyncio.ensure_future(asyncio.to_thread(wav_to_ogg_opus, wav, ogg, kbps)))
        return {"rate": rate, "kbps": kbps, "seconds": 60, "wav_bytes": wav.stat().st_size,
                "ogg_bytes": ogg.stat().st_size, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "loop_lag_max_ms": round(lag * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kbps", type=int, default=32)
    parser.add_argument("--rate", type=int, default=8000)
    args = parser.parse_args()
    result = asyncio.run(measure(args.rate, args.kbps))
    print(result)
    print(f"written to {write_result('recording_ogg', result)}")


if __name__ == "__main__":
    main()
