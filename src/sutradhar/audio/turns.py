"""Turn detection: 20 ms frames in, "caller started speaking" and finished utterances out.

The detector runs at the wire rate (8 kHz on phone lines) so the per-frame path is one VAD call and
a buffer append; the finished utterance is resampled to 16 kHz once, for STT.

Rules, in frames of 20 ms:
- A voiced frame opens a candidate segment, which starts with a pre-roll of the frames just before
  it so the first syllable is not cut.
- After `barge_in_ms` of voiced frames the caller is confirmed to be speaking: `SPEECH_STARTED`
  (the session barges in on the agent if it is talking).
- `end_of_turn_ms` of unvoiced frames ends the segment. It is an utterance when it held at least
  `min_speech_ms` of voiced frames, otherwise it was a noise blip and is dropped.
- A segment longer than `max_utterance_s` is cut and delivered as an utterance.
- With `pause_ms`, a confirmed segment that has been silent that long reports `SpeechPaused` (once
  per pause) with the audio so far, and `SPEECH_RESUMED` if the caller then goes on: the session's
  end-of-turn policy may end the turn there (`end_segment`) instead of waiting for `end_of_turn_ms`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sutradhar.audio.codecs import resample
from sutradhar.audio.vad import FRAME_MS, VAD

STT_RATE = 16000


class SpeechStarted:
    """The caller has been speaking for `barge_in_ms` (singleton: returned, never allocated)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SPEECH_STARTED"


SPEECH_STARTED = SpeechStarted()


class SpeechResumed:
    """The caller spoke again after a reported pause: the segment goes on (singleton)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SPEECH_RESUMED"


SPEECH_RESUMED = SpeechResumed()


@dataclass
class SpeechSegment:
    """One finished stretch of caller speech, resampled for STT. `ended_at` is when its trailing
    silence began (time.monotonic()); the session turns it into the pipeline's `Utterance`."""

    audio: bytes
    sample_rate: int = STT_RATE
    ended_at: float = 0.0


@dataclass
class SpeechPaused:
    """A confirmed segment fell silent for `pause_ms`; `segment` is the audio so far (for STT)."""

    segment: SpeechSegment


Event = SpeechStarted | SpeechResumed | SpeechPaused | SpeechSegment


class TurnDetector:
    def __init__(
        self,
        vad: VAD,
        *,
        end_of_turn_ms: int = 600,
        min_speech_ms: int = 200,
        max_utterance_s: float = 30.0,
        barge_in_ms: int = 120,
        preroll_ms: int = 200,
        pause_ms: int = 0,
        energy_floor: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vad = vad
        self.sample_rate = vad.sample_rate
        self.frame_bytes = self.sample_rate * FRAME_MS // 1000 * 2
        self._end_frames = max(1, end_of_turn_ms // FRAME_MS)
        self._min_frames = max(1, min_speech_ms // FRAME_MS)
        self._max_bytes = int(max_utterance_s * self.sample_rate) * 2
        self._barge_frames = max(1, barge_in_ms // FRAME_MS)
        self._pause_frames = pause_ms // FRAME_MS if pause_ms else 0
        # WebRTC VAD keeps saying "speech" for ~100 ms of digital silence after the last syllable
        # (its hangover): a frame quieter than this RMS is silence whatever the VAD says, so the
        # end of turn counts from the caller's last sound, not from the VAD's.
        self._floor_sq = energy_floor * energy_floor * (self.frame_bytes // 2)
        self._paused = False
        self._clock = clock
        self._preroll: deque[bytes] = deque(maxlen=max(0, preroll_ms // FRAME_MS))
        self._audio = bytearray()
        self._active = False
        self.opened = 0  # segments opened so far: tells one open segment from the next
        self._voiced = 0
        self._silent = 0
        self._silence_began = 0.0
        self._announced = False

    @property
    def in_speech(self) -> bool:
        """True while a segment is open and has been confirmed as speech."""
        return self._announced

    @property
    def segment_open(self) -> bool:
        """True from the first voiced frame of a candidate segment until it ends or is dropped."""
        return self._active

    def segment_audio(self) -> bytes:
        """The open segment so far, at the detector's rate (pre-roll included): what a streaming
        STT opened mid-segment must hear first."""
        return bytes(self._audio)

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the open segment so far."""
        return self._voiced * FRAME_MS

    @property
    def silence_ms(self) -> int:
        """Silence at the end of the open segment so far."""
        return self._silent * FRAME_MS

    def end_segment(self) -> SpeechSegment | None:
        """End the open segment now (the end-of-turn policy decided): the utterance, or None."""
        if not self._active:
            return None
        return self._finish(self._silence_began if self._silent else self._clock())

    def push(self, frame: bytes) -> Event | None:
        """Feed one 20 ms frame; returns an event when one happens (usually None)."""
        speech = self.vad.is_speech(frame)
        if speech and self._floor_sq:
            # int64: a loud frame's sum of squares overflows int32 (RMS above ~3,660 wrapped
            # negative, and loud speech counted as silence)
            samples = np.frombuffer(frame, "<i2").astype(np.int64)
            speech = int(np.dot(samples, samples)) >= self._floor_sq
        if not self._active:
            if not speech:
                self._preroll.append(frame)
                return None
            self._active = True
            self.opened += 1
            for old in self._preroll:
                self._audio += old
            self._preroll.clear()
        self._audio += frame
        if speech:
            self._voiced += 1
            self._silent = 0
            if not self._announced and self._voiced >= self._barge_frames:
                self._announced = True
                return SPEECH_STARTED
            if self._paused:
                self._paused = False
                return SPEECH_RESUMED
        else:
            if self._silent == 0:
                self._silence_began = self._clock()
            self._silent += 1
            if self._silent >= self._end_frames:
                return self._finish(self._silence_began)
            if (self._silent == self._pause_frames and self._announced and not self._paused
                    and self._voiced >= self._min_frames):
                self._paused = True
                return SpeechPaused(self._segment(self._silence_began))
        if len(self._audio) >= self._max_bytes:
            return self._finish(self._clock())
        return None

    def _segment(self, ended_at: float) -> SpeechSegment:
        # Keep ~200 ms of the trailing silence: enough for STT, not 600 ms of nothing.
        keep = len(self._audio) - max(0, self._silent - 10) * self.frame_bytes
        return SpeechSegment(resample(bytes(self._audio[:keep]), self.sample_rate, STT_RATE), STT_RATE,
                             ended_at)

    def _finish(self, ended_at: float) -> SpeechSegment | None:
        voiced = self._voiced
        segment = self._segment(ended_at) if voiced >= self._min_frames else None
        self.reset()
        return segment

    def reset(self) -> None:
        """Forget the open segment (after an utterance, or when the call state makes it moot)."""
        self._audio = bytearray()
        self._active = False
        self._voiced = self._silent = 0
        self._announced = False
        self._paused = False
