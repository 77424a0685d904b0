"""Smart Turn v3: an acoustic judge of whether the caller has finished their turn.

Pipecat's Smart Turn v3.2 (BSD-2) is a small Whisper-encoder classifier over the last 8 s of
speech at 16 kHz; it hears what text cannot (a falling pitch, a drawn-out "and..."). Its ONNX file
ships inside the `pipecat-ai` wheel, installed without pipecat's dependencies (scripts/setup.sh),
so it is located on disk and never imported or downloaded. The session is created once per process
and shared by every call: onnxruntime's `run` is thread-safe, and each run uses one core.

Input, as the model was trained: the audio's last 8 s, zero-padded at the front, normalised to
zero mean and unit variance, as 80 x 800 Whisper log-mel features. Output: P(turn complete).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from sutradhar.audio.codecs import resample

MODEL_RATE = 16000
WINDOW_S = 8
# Of the 23 languages the model was trained on, the ones Sutradhar speaks (not Telugu or Gujarati).
LANGUAGES = frozenset({"en", "hi"})
_MODEL_IN_WHEEL = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
_NORM_EPS = 1e-7  # the variance floor of Whisper's waveform normalisation
# Its own threads: a burst of decisions under load must not starve the loop's default executor.
_EXECUTOR = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="smart-turn")


class SmartTurnUnavailable(RuntimeError):
    """TURN_ACOUSTIC_MODEL=smart-turn without the model installed (scripts/setup.sh installs it)."""


def model_path() -> Path:
    """The ONNX file inside the installed pipecat-ai package, found without importing pipecat
    (its package imports pull dependencies we do not install)."""
    spec = importlib.util.find_spec("pipecat")  # a top-level name: finds, does not execute
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root).joinpath(*_MODEL_IN_WHEEL)
        if path.is_file():
            return path
    raise SmartTurnUnavailable("Smart Turn v3 is not installed: run scripts/setup.sh "
                               "(pip install --no-deps pipecat-ai==1.14.0 and the smartturn extra)")


class SmartTurn:
    """Scores the end of a caller's speech: the probability that their turn is complete."""

    def __init__(self, path: str | Path | None = None) -> None:
        try:
            import onnxruntime as ort
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as exc:
            raise SmartTurnUnavailable(f"Smart Turn v3 needs the smartturn extra: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one core per decision; calls run side by side instead
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path) if path else model_path()
        self._session = ort.InferenceSession(str(self.path), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._features = FeatureExtractor(sampling_rate=MODEL_RATE, chunk_length=WINDOW_S)

    def features(self, pcm: bytes, sample_rate: int) -> np.ndarray:
        """PCM16 at any rate -> the model's (80, 800) float32 log-mel input."""
        if sample_rate != MODEL_RATE:
            pcm = resample(pcm, sample_rate, MODEL_RATE)
        window = MODEL_RATE * WINDOW_S
        samples = np.frombuffer(pcm, "<i2")[-window:].astype(np.float32) / 32768.0
        samples = np.pad(samples, (window - len(samples), 0))  # the end of speech stays at the end
        samples = (samples - samples.mean()) / np.sqrt(samples.var() + _NORM_EPS)
        return self._features(samples, padding=0).astype(np.float32)

    def probability(self, pcm: bytes, sample_rate: int) -> float:
        """P(turn complete) for speech ending with `pcm` (blocking: ~50 ms of one core)."""
        features = self.features(pcm, sample_rate)[np.newaxis]
        [scores] = self._session.run(None, {self._input: features})
        return float(np.asarray(scores).reshape(-1)[0])  # the model ends in a sigmoid

    async def score(self, pcm: bytes, sample_rate: int) -> float:
        """`probability` on the model's threads, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self.probability, pcm, sample_rate)

    @staticmethod
    def covers(language: str) -> bool:
        """Whether the model was trained on `language` ("hi-IN" -> "hi")."""
        return language.split("-")[0].lower() in LANGUAGES


@lru_cache(maxsize=1)
def shared_smart_turn() -> SmartTurn:
    """The process's one model session, loaded on first use (~0.5 s)."""
    return SmartTurn()
