"""LocalSTT hands its decoding options to faster-whisper (a recording fake in the model cache)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sutradhar.engines.local import whisper
from sutradhar.engines.local.whisper import FALLBACK_TEMPERATURES, LocalSTT


class RecordingModel:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, samples: np.ndarray, **options: Any) -> tuple[list[Any], Any]:
        self.calls.append(options)
        return [SimpleNamespace(text=" Where is order 4567?")], SimpleNamespace(language="en",
                                                                                language_probability=0.9)


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingModel:
    fake = RecordingModel()
    monkeypatch.setitem(whisper._MODELS, str(tmp_path.resolve()), fake)
    return fake


async def test_options_reach_the_decoder(tmp_path: Path, model: RecordingModel) -> None:
    stt = LocalSTT(model_dir=tmp_path, beam_size=5, vad_filter=True, temperature_fallback=True,
                   initial_prompt="order status, refund")
    transcript = await stt.transcribe(bytes(3200), 16000, "en-IN")
    assert transcript.text == "Where is order 4567?"
    [options] = model.calls
    assert (options["beam_size"], options["vad_filter"], options["temperature"], options["initial_prompt"]) == (
        5, True, FALLBACK_TEMPERATURES, "order status, refund")
    await LocalSTT(model_dir=tmp_path).transcribe(bytes(3200), 16000, "en-IN")
    assert (model.calls[1]["temperature"], model.calls[1]["initial_prompt"]) == (0.0, None)


async def test_the_english_prompt_is_kept_from_other_languages_and_from_detection(
        tmp_path: Path, model: RecordingModel) -> None:
    stt = LocalSTT(model_dir=tmp_path, multilingual=True, initial_prompt="order status, refund")
    await stt.transcribe(bytes(3200), 16000, "hi-IN")
    await stt.transcribe(bytes(3200), 16000, None)
    await stt.transcribe(bytes(3200), 16000, "en-IN")
    assert [(c["language"], c["initial_prompt"]) for c in model.calls] == [
        ("hi", None), (None, None), ("en", "order status, refund")]
