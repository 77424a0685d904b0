"""What the caller hears is what the agent said: every sentence's audio reaches the line before the
sentence's mark (marks say what was heard, for barge-in), and no reply loses its tail, whatever
rate the TTS speaks at (here 16 kHz and 22.05 kHz voices on an 8 kHz phone line)."""

from __future__ import annotations

import pytest

from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import e2e_settings, free_port, live_server, scripted_engines
from tests.e2e.wire import TwilioCaller

REPLY = "First sentence here. And a second one."
MS_PER_CHAR = 30


@pytest.mark.parametrize("tts_rate", [8000, 16000, 22050])
async def test_each_sentence_is_on_the_line_before_its_mark_and_no_tail_is_lost(tts_rate):
    port = free_port()
    tts = ScriptedTTS(sample_rate=tts_rate, ms_per_char=MS_PER_CHAR, chunk_ms=100)
    services = lambda s: scripted_engines(llm=ScriptedLLM(replies=(REPLY,)), tts=tts)  # noqa: E731
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port)
    with live_server(settings, engines=services) as server:
        async with TwilioCaller(server.ws_url) as caller:
            assert await caller.turn(UTTERANCES["en-IN"][1].pcm())
            assert await caller.wait_quiet(0.5)
            marks, mark_at, received = list(caller.marks), dict(caller.mark_at), len(caller.audio)

    # Expected audio per sentence at the line's 8 kHz (PCM16 bytes), in the order spoken.
    sentences = [text for text, _ in tts.calls]
    expected = [int(len(text) * MS_PER_CHAR / 1000 * 8000) * 2 for text in sentences]
    frame = 320  # one 20 ms frame: padding of a sentence's last partial frame
    cumulative = [sum(expected[: i + 1]) for i in range(len(expected))]
    sentence_marks = [m for m in marks if m.split(".")[1].isdigit()]
    assert len(sentence_marks) == len(sentences), (marks, sentences)
    for name, due in zip(sentence_marks, cumulative):
        assert mark_at[name] >= due - 2 * frame, (
            f"mark {name} arrived after {mark_at[name]} bytes of audio; its sentence ends at {due}")
    assert received >= cumulative[-1] - 2 * frame, f"only {received} of {cumulative[-1]} bytes of speech arrived"
