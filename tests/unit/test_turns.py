"""VAD and turn detection on real (espeak) speech passed through a mu-law phone line."""

from __future__ import annotations

import numpy as np
import pytest

from sutradhar.audio.codecs import silence
from sutradhar.audio.turns import SPEECH_STARTED, SpeechSegment, TurnDetector
from sutradhar.audio.vad import SileroVAD, WebRtcVAD, make_vad
from tests.support.audio import frames, speech_pcm, with_silence


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(detector: TurnDetector, pcm: bytes, clock: FakeClock) -> list[tuple[float, object]]:
    events = []
    for frame in frames(pcm, detector.sample_rate):
        event = detector.push(frame)
        if event is not None:
            events.append((clock.now, event))
        clock.now += 0.02
    return events


@pytest.mark.parametrize("kind", ["webrtc", "silero"])
@pytest.mark.parametrize("voice", ["en-us", "hi"])
def test_one_phrase_gives_speech_started_then_one_utterance(kind: str, voice: str) -> None:
    speech = speech_pcm("Hello, I would like to know my account balance.", voice, 8000 if kind == "webrtc" else 16000)
    rate = 8000 if kind == "webrtc" else 16000
    clock = FakeClock()
    detector = TurnDetector(make_vad(kind, rate), clock=clock)
    events = run(detector, with_silence(speech, rate, 400, 1200), clock)
    kinds = [e for _, e in events]
    assert kinds[0] is SPEECH_STARTED
    utterances = [e for e in kinds if isinstance(e, SpeechSegment)]
    assert len(utterances) == 1
    utt = utterances[0]
    assert utt.sample_rate == 16000
    # the utterance holds the phrase (plus pre-roll and a short tail), resampled to 16 kHz
    spoken_s = len(speech) / 2 / rate
    assert spoken_s * 0.8 < len(utt.audio) / 2 / 16000 < spoken_s + 0.7
    # ended_at is when the trailing silence began: ~ end of speech, not 600 ms later
    speech_end = 100.0 + 0.4 + spoken_s
    assert abs(utt.ended_at - speech_end) < 0.3
    # and the utterance is delivered end_of_turn_silence after that
    delivered_at = next(t for t, e in events if isinstance(e, SpeechSegment))
    assert 0.55 <= delivered_at - utt.ended_at <= 0.65


def test_preroll_keeps_the_first_syllable() -> None:
    speech = speech_pcm("Stop right there.", "en-us", 8000)
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock, preroll_ms=200)
    utt = next(e for _, e in run(detector, with_silence(speech, 8000, 500, 1000), clock) if isinstance(e, SpeechSegment))
    # the detector started before the VAD's first voiced frame: the pre-roll is in the audio
    assert len(utt.audio) / 2 / 16000 > len(speech) / 2 / 8000 + 0.1


def test_silence_and_short_clicks_give_nothing() -> None:
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock, min_speech_ms=200)
    click = (np.sin(np.arange(80) / 3) * 12000).astype("<i2").tobytes()  # 10 ms burst
    pcm = silence(500, 8000) + click + silence(1000, 8000)
    assert [e for _, e in run(detector, pcm, clock) if isinstance(e, SpeechSegment)] == []


def test_two_phrases_with_a_long_pause_are_two_turns() -> None:
    a = speech_pcm("Good morning.", "en-us")
    b = speech_pcm("What is the weather today?", "en-us")
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock)
    events = run(detector, with_silence(a, 8000) + with_silence(b, 8000), clock)
    assert sum(isinstance(e, SpeechSegment) for _, e in events) == 2
    assert sum(e is SPEECH_STARTED for _, e in events) == 2


def test_short_pause_inside_a_sentence_does_not_end_the_turn() -> None:
    a = speech_pcm("I want to", "en-us")
    b = speech_pcm("check my balance", "en-us")
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock, end_of_turn_ms=600)
    events = run(detector, with_silence(a + silence(300, 8000) + b, 8000), clock)
    assert sum(isinstance(e, SpeechSegment) for _, e in events) == 1


def test_max_utterance_cuts_a_monologue() -> None:
    speech = speech_pcm("one two three four five six seven eight nine ten eleven twelve", "en-us")
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock, max_utterance_s=1.0)
    utts = [e for _, e in run(detector, with_silence(speech, 8000), clock) if isinstance(e, SpeechSegment)]
    assert len(utts) >= 2
    assert len(utts[0].audio) / 2 / 16000 == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("voice", ["te", "gu"])
def test_indian_language_speech_is_detected(voice: str) -> None:
    speech = speech_pcm("నమస్కారం, మీరు ఎలా ఉన్నారు" if voice == "te" else "નમસ્તે, તમે કેમ છો", voice)
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), clock=clock)
    assert sum(isinstance(e, SpeechSegment) for _, e in run(detector, with_silence(speech, 8000), clock)) == 1


def test_silero_buffers_20ms_frames_into_its_window() -> None:
    vad = SileroVAD(16000)
    for frame in frames(silence(200, 16000), 16000):
        assert vad.is_speech(frame) is False


def test_a_short_pause_is_reported_and_resuming_keeps_one_segment() -> None:
    """With pause_ms, the detector reports the pause (audio so far) and the resume; the segment
    goes on and ends as one utterance holding both halves."""
    from sutradhar.audio.turns import SPEECH_RESUMED, SpeechPaused

    first = speech_pcm("my number is", "en-us", 8000)
    second = speech_pcm("nine eight four five", "en-us", 8000)
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), end_of_turn_ms=1500, pause_ms=200, clock=clock)
    pcm = silence(300, 8000) + first + silence(500, 8000) + second + silence(1600, 8000)
    events = [e for _, e in run(detector, pcm, clock)]
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(paused) >= 2 and SPEECH_RESUMED in events
    utterances = [e for e in events if isinstance(e, SpeechSegment)]
    assert len(utterances) == 1
    # the first pause's segment is the first half only; the utterance holds both
    assert len(paused[0].segment.audio) < len(utterances[0].audio)
    assert len(utterances[0].audio) / 2 / 16000 > (len(first) + len(second)) / 2 / 8000


def test_end_segment_ends_the_turn_where_the_policy_decides() -> None:
    from sutradhar.audio.turns import SpeechPaused

    speech = speech_pcm("what are your hours", "en-us", 8000)
    clock = FakeClock()
    detector = TurnDetector(WebRtcVAD(8000), end_of_turn_ms=1500, pause_ms=200, clock=clock)
    segment = None
    for frame in frames(silence(300, 8000) + speech + silence(400, 8000), 8000):
        event = detector.push(frame)
        clock.now += 0.02
        if isinstance(event, SpeechPaused):
            segment = detector.end_segment()
            break
    assert segment is not None and not detector.segment_open
    assert detector.end_segment() is None  # nothing open any more


def test_the_end_of_turn_counts_from_the_last_sound_not_the_vads_hangover() -> None:
    """WebRTC VAD calls ~100 ms of digital silence after the last syllable speech; with an
    energy floor the turn ends that much sooner after the caller's last sound."""
    speech = speech_pcm("What are your opening hours today?", "en-us", 8000)
    pcm = silence(300, 8000) + speech + silence(1200, 8000)
    delivered = {}
    for floor in (0.0, 150.0):
        clock = FakeClock()
        detector = TurnDetector(WebRtcVAD(8000), end_of_turn_ms=600, energy_floor=floor, clock=clock)
        delivered[floor] = next(t for t, e in run(detector, pcm, clock) if isinstance(e, SpeechSegment))
    assert 0.06 <= delivered[0.0] - delivered[150.0] <= 0.14


def test_a_loud_frame_is_speech_under_the_energy_floor() -> None:
    """The floor compares a frame's sum of squares: loud speech (RMS ~10,000, a sum past int32)
    must count as voiced, not wrap round to "silence"."""
    rng = np.random.default_rng(7)
    speech = speech_pcm("yes", "en-us", 8000)
    samples = np.frombuffer(speech, "<i2").astype(np.float64)
    loud = np.clip(samples * (12000 / max(1.0, np.sqrt((samples ** 2).mean()))), -32768, 32767)
    loud_pcm = loud.astype("<i2").tobytes() + (rng.normal(0, 20, 1600)).astype("<i2").tobytes()
    voiced = {}
    for floor in (0.0, 150.0):
        clock = FakeClock()
        detector = TurnDetector(WebRtcVAD(8000), end_of_turn_ms=600, energy_floor=floor, clock=clock)
        run(detector, silence(200, 8000) + loud_pcm, clock)
        voiced[floor] = detector.voiced_ms
    assert voiced[150.0] >= voiced[0.0] - 60  # the floor drops only the VAD's quiet hangover
