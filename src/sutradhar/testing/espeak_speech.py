"""Caller speech from espeak-ng for tests and benchmarks: one cached WAV per (text, voice, rate,
pitch), made once and shared by every process.

Each user turns the WAV into what it needs (a phone line, 8 kHz frames, a trimmed phrase); this
module only makes and caches espeak-ng's own output (22.05 kHz PCM16). Cached files are written to
a per-process temporary name and renamed into place, so parallel test workers and benchmark
client processes never read half a file. The engine's own espeak-ng voice (TTS) is
`engines/local/espeak.py`, not this.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sutradhar.audio.codecs import read_wav_file


def default_cache() -> Path:
    return Path(os.environ.get("SUTRADHAR_TEST_AUDIO", Path(tempfile.gettempdir()) / "sutradhar-test-audio"))


def espeak_wav(text: str, voice: str = "en-us", wpm: int | None = None, pitch: int | None = None,
               cache: Path | None = None) -> Path:
    """The WAV espeak-ng makes of `text` (its default speed and pitch unless given), cached."""
    cache = cache or default_cache()
    key = hashlib.sha1(f"{voice}|{wpm}|{pitch}|{text}".encode()).hexdigest()[:16]
    path = cache / f"{voice}-{key}.wav"
    if path.exists():
        return path
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise RuntimeError("espeak-ng is needed to make caller speech (apt-get install espeak-ng)")
    cache.mkdir(parents=True, exist_ok=True)
    args = [exe, "-v", voice]
    if wpm is not None:
        args += ["-s", str(wpm)]
    if pitch is not None:
        args += ["-p", str(pitch)]
    tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
    subprocess.run([*args, "-w", str(tmp), text], check=True, capture_output=True, timeout=60)
    tmp.replace(path)  # atomic: a parallel process never reads half a file
    return path


def espeak_pcm(text: str, voice: str = "en-us", wpm: int | None = None, pitch: int | None = None,
               cache: Path | None = None) -> tuple[bytes, int]:
    """espeak-ng's speech of `text` as PCM16 and its sample rate."""
    return read_wav_file(str(espeak_wav(text, voice, wpm, pitch, cache)))
