"""Steady-tone ("beep") detection on 20 ms PCM16 frames, for answering machines.

A voicemail beep is one pure tone (commonly 400-2000 Hz) held for a few hundred ms. Each frame is
judged over the last 40 ms (an FFT of 320 samples at 8 kHz: 25 Hz bins): it is *tonal* when one
narrow peak inside the band holds most of the energy. Speech never does for long — its energy is
spread over many harmonics and its pitch glides — so a beep is a run of tonal frames at a steady
frequency lasting at least `min_ms`. The run's start and end are reported in ms of stream audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutradhar.audio.vad import FRAME_MS

WINDOW_FRAMES = 2  # 40 ms per analysis window (the frame and the one before it)
PEAK_BINS = 2  # the peak's energy is its bin and this many on each side (Hann leakage)


@dataclass(frozen=True, slots=True)
class Beep:
    start_ms: int  # stream time of the first tonal frame
    end_ms: int  # stream time just after the last tonal frame
    hz: float  # the tone's frequency

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def as_dict(self) -> dict[str, float | int]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "hz": round(self.hz, 1)}


class ToneDetector:
    """Feed every frame with `push`; it returns a `Beep` once, when a long-enough tone ends."""

    def __init__(self, sample_rate: int, *, low_hz: float = 400.0, high_hz: float = 2000.0,
                 min_ms: int = 200, max_ms: int = 3000, concentration: float = 0.7,
                 min_rms: float = 200.0) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        n = self.frame_samples * WINDOW_FRAMES
        self._window = np.hanning(n)
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        self._bin_hz = freqs[1]
        self._band = (freqs >= low_hz) & (freqs <= high_hz)
        self._useful = freqs >= 100.0  # mains hum and DC are not the line's content
        self._min_frames = max(1, min_ms // FRAME_MS)
        self._max_frames = max(self._min_frames, max_ms // FRAME_MS)
        self._concentration = concentration
        self._min_energy = (min_rms ** 2) * n
        self._previous = np.zeros(self.frame_samples)
        self._frames = 0  # frames pushed: the stream clock
        self._run = 0  # consecutive tonal frames at one frequency
        self._run_hz = 0.0
        self.tonal = False  # the last frame pushed was part of a tone (the VAD may call it speech)

    @property
    def now_ms(self) -> int:
        return self._frames * FRAME_MS

    def push(self, frame: bytes) -> Beep | None:
        samples = np.frombuffer(frame, "<i2").astype(np.float64)
        if len(samples) != self.frame_samples:
            raise ValueError(f"expected {self.frame_samples} samples per frame, got {len(samples)}")
        window = np.concatenate((self._previous, samples))
        self._previous = samples
        self._frames += 1
        hz = self._peak_hz(window)
        steady = hz is not None and (self._run == 0 or abs(hz - self._run_hz) <= 2 * self._bin_hz)
        if steady:
            if self._run == 0:
                self._run_hz = hz
            self._run += 1
            self.tonal = self._run >= 2  # one window alone could be a vowel's instant
            return None
        beep = self._ended()
        if hz is not None:  # a new tone at another frequency starts its own run
            self._run, self._run_hz = 1, hz
        return beep

    def _ended(self) -> Beep | None:
        run, self._run = self._run, 0
        self.tonal = False
        if not self._min_frames <= run - 1 <= self._max_frames:
            return None
        # Each 40 ms window also holds the frame before it, so a tone's run spans one frame more
        # than the tone: it started with the run's first frame and ended a frame before the run.
        start = self._frames - 1 - run
        return Beep(start_ms=start * FRAME_MS, end_ms=(start + run - 1) * FRAME_MS, hz=self._run_hz)

    def _peak_hz(self, window: np.ndarray) -> float | None:
        spectrum = np.abs(np.fft.rfft(window * self._window)) ** 2
        useful = spectrum[self._useful].sum()
        if useful < self._min_energy:
            return None
        band = np.where(self._band, spectrum, 0.0)
        peak = int(band.argmax())
        around = spectrum[max(0, peak - PEAK_BINS):peak + PEAK_BINS + 1].sum()
        if around < self._concentration * useful:
            return None
        return float(peak * self._bin_hz)
