"""Answering-machine detection on recorded answers: machine greetings in English and Hindi with
their beep, people saying "hello?", network announcements settled by their transcript."""

from __future__ import annotations

import pytest

from sutradhar.agents.spec import load_agent
from sutradhar.audio.codecs import silence
from sutradhar.audio.tone import ToneDetector
from sutradhar.audio.vad import make_vad
from sutradhar.errors import ConfigError
from sutradhar.telephony.voicemail import (
    MachineDetector,
    MachinePhrases,
    Pending,
    Verdict,
    carrier_verdict,
    default_phrases,
)
from tests.support.answers import (
    BEEP_HZ,
    BEEP_MS,
    RATE,
    beep,
    human_hello,
    machine_greeting,
)
from tests.support.audio import frames, speech_pcm


def detector() -> MachineDetector:
    return MachineDetector(make_vad("webrtc", RATE, 2))


def run(d: MachineDetector, pcm: bytes) -> list[Verdict | Pending]:
    """Feed every frame; return what the detector said along the way."""
    return [out for frame in frames(pcm, RATE) if (out := d.push(frame)) is not None]


# --- the beep ---

@pytest.mark.parametrize("language", ["en-IN", "hi-IN"])
def test_the_beep_after_a_greeting_is_found_and_timed(language) -> None:
    pcm, beep_at = machine_greeting(language)
    tones = ToneDetector(RATE)
    found = [b for frame in frames(pcm, RATE) if (b := tones.push(frame)) is not None]
    assert len(found) == 1
    (tone,) = found
    assert abs(tone.start_ms - beep_at) <= 20 and abs(tone.duration_ms - BEEP_MS) <= 20
    assert abs(tone.hz - BEEP_HZ) <= 25


@pytest.mark.parametrize("language", ["en-IN", "hi-IN"])
def test_speech_alone_is_never_a_beep(language) -> None:
    pcm, _ = machine_greeting(language, with_beep=False)
    tones = ToneDetector(RATE)
    assert [b for frame in frames(pcm + human_hello(language), RATE) if (b := tones.push(frame)) is not None] == []


def test_a_tone_too_short_or_outside_the_band_is_not_a_beep() -> None:
    tones = ToneDetector(RATE)
    audio = beep(ms=100) + silence(300, RATE) + beep(hz=250) + silence(300, RATE) + beep(hz=3000)
    assert [b for frame in frames(audio + silence(300, RATE), RATE) if (b := tones.push(frame)) is not None] == []


# --- greetings ---

@pytest.mark.parametrize("language", ["en-IN", "hi-IN"])
def test_a_recorded_greeting_is_a_machine_and_the_message_waits_for_the_beep(language) -> None:
    pcm, beep_at = machine_greeting(language)
    d = detector()
    cue_at = None
    said: list[Verdict | Pending] = []
    for frame in frames(pcm, RATE):
        if (out := d.push(frame)) is not None:
            said.append(out)
        if cue_at is None and d.message_cue() is not None:
            cue_at = d.now_ms
    (verdict,) = said
    assert (verdict.answered_by, verdict.reason) == ("machine", "long_greeting")
    assert verdict.at_ms < beep_at  # decided while the greeting still plays: the agent stays silent
    assert d.message_cue() == "beep" and cue_at is not None
    assert beep_at + BEEP_MS <= cue_at <= beep_at + BEEP_MS + 60  # just after the beep ends


@pytest.mark.parametrize("language", ["en-IN", "hi-IN"])
def test_a_person_saying_hello_is_human_on_their_pause(language) -> None:
    d = detector()
    (verdict,) = run(d, human_hello(language))
    assert (verdict.answered_by, verdict.reason) == ("human", "short_answer")
    assert verdict.at_ms <= 400 + 1000 + 700 + 40  # lead, the word, the pause (and a frame)


def test_without_a_beep_the_message_starts_once_the_greeting_is_over_and_the_line_quiet() -> None:
    pcm, _ = machine_greeting("en-IN", with_beep=False)
    d = detector()
    run(d, pcm[:len(pcm) - 2000 * RATE * 2 // 1000])  # the greeting, without its trailing silence
    assert d.verdict is not None and d.verdict.answered_by == "machine" and d.message_cue() is None
    run(d, silence(1300, RATE))
    assert d.message_cue() == "silence"


def test_a_beep_alone_is_a_machine() -> None:
    d = detector()
    (verdict,) = run(d, silence(500, RATE) + beep() + silence(100, RATE))
    assert (verdict.answered_by, verdict.reason) == ("machine", "beep")
    assert verdict.evidence["beep"]["start_ms"] == 500


def test_a_silent_answer_is_unknown_after_its_timeout() -> None:
    d = detector()
    (verdict,) = run(d, silence(4000, RATE))
    assert (verdict.answered_by, verdict.reason, verdict.at_ms) == ("unknown", "silence", 3000)


def test_a_middling_greeting_is_settled_by_its_transcript() -> None:
    announcement = silence(300, RATE) + speech_pcm("The number you are calling is switched off.") + silence(800, RATE)
    d = detector()
    (pending,) = run(d, announcement)
    assert isinstance(pending, Pending) and 1500 <= pending.greeting_ms < 3500 and pending.audio
    verdict = d.heard("The number you are calling is switched off.")
    assert verdict is not None and (verdict.answered_by, verdict.reason) == ("machine", "phrase")
    assert verdict.evidence["phrase"] == "switched off"

    person = detector()
    run(person, silence(300, RATE) + speech_pcm("Hello, yes, who is calling please?") + silence(800, RATE))
    verdict = person.heard("Hello, yes, who is calling please?")
    assert verdict is not None and verdict.answered_by == "human"


# --- transcripts ---

@pytest.mark.parametrize("text", [
    "Hi, you've reached Priya. Please leave a message after the tone.",
    "कृपया बीप के बाद अपना संदेश छोड़ें",
    "आप जिस नंबर पर कॉल कर रहे हैं वह अभी उपलब्ध नहीं है",
    "దయచేసి బీప్ తర్వాత మీ సందేశాన్ని వదిలివేయండి",
    "તમે જે નંબર પર કૉલ કરી રહ્યા છો તે હાલમાં ઉપલબ્ધ નથી",
    "The subscriber you have dialled is not reachable",
])
def test_machine_phrases_are_found_in_all_four_languages(text) -> None:
    assert default_phrases().find(text) is not None


@pytest.mark.parametrize("text", ["Hello?", "हाँ, बोलिए", "haan ji boliye", "Who is this?", "నమస్కారం", "હા, બોલો"])
def test_what_people_say_when_they_pick_up_is_not_a_machine_phrase(text) -> None:
    assert default_phrases().find(text) is None


def test_phrases_match_whole_words_and_ignore_case_and_apostrophes() -> None:
    phrases = MachinePhrases.load("en-IN: [can't take your call, mailbox]")
    assert phrases.find("Sorry, I CANT take your call right now") == "cant take your call"
    assert phrases.find("my mailboxes are full") is None


def test_twilios_answered_by_values_map_onto_ours() -> None:
    assert carrier_verdict("machine_end_beep", 0, {}).answered_by == "machine"
    assert carrier_verdict("fax", 0, {}).answered_by == "machine"
    assert carrier_verdict("human", 0, {"detection_ms": 1800}).as_dict() == {
        "answered_by": "human", "reason": "carrier", "at_ms": 0, "carrier_answered_by": "human",
        "detection_ms": 1800}


# --- the agent file ---

def test_an_agents_voicemail_message_must_be_in_its_languages(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("name: x\nlanguages: [hi-IN]\nvoicemail:\n  action: leave_message\n"
                    "  message: {en-IN: Hello, hi-IN: ' '}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_agent(path)
    assert "voicemail.message.en-IN: not one of languages" in str(raised.value)
    assert "voicemail.message.hi-IN: empty" in str(raised.value)
    path.write_text("name: x\nlanguages: [hi-IN]\nvoicemail: {action: shout}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="voicemail.action"):
        load_agent(path)
