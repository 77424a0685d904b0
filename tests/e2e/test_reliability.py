"""Provider faults in the middle of live calls, through the real server and real HTTP fakes.

Every stage fails in turn (5xx, 429, garbage, a stream cut mid-way, a hang past the timeout): the
caller always hears something (the fallback provider's answer, or the polite line), the call goes
on, breakers open after their threshold and a background probe closes them once the provider
answers again, and nothing is left running.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from sutradhar.engines.base import ProviderError, RateLimited
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from tests import fakes
from tests.e2e.calls import agent_audio_rms, caller_turn, place_call
from tests.e2e.fixtures import UTTERANCES
from tests.e2e.harness import (
    configured_engines,
    e2e_settings,
    free_port,
    live_server,
    scripted_engines,
)

EN = UTTERANCES["en-IN"]


class BreakerLog:
    """A router listener the test attaches: every breaker transition with its time."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, str, str, str]] = []

    def breaker(self, stage: str, provider: str, state: Any) -> None:
        self.changes.append((time.monotonic(), stage, provider, getattr(state, "value", str(state))))


async def test_faults_at_every_stage_mid_call_caller_hears_fallbacks_and_call_goes_on(fake_sarvam, logs):
    Fault = fakes.Fault
    port = free_port()
    settings = e2e_settings(stt=["sarvam"], llm=["sarvam"], tts=["sarvam"], sarvam_base_url=fake_sarvam.base_url,
                            sarvam_api_key=fake_sarvam.api_key, public_url=f"http://127.0.0.1:{port}", port=port,
                            stt_timeout_s=1.0, llm_timeout_s=2.0, tts_timeout_s=2.0, admin_token="adm")
    backup_stt = ScriptedSTT(name="backup-stt", script=("backup heard you",))
    backup_llm = ScriptedLLM(name="backup-llm", replies=("Backup answer.",))
    backup_tts = ScriptedTTS(name="backup-tts", sample_rate=8000, ms_per_char=20, chunk_ms=100, frequency_hz=660)
    for n in range(5):
        fake_sarvam.transcribe_as(f"question {n + 1}", "en-IN")
    fake_sarvam.reply("First answer.", "Third answer.",
                      "This fourth answer is long enough to be cut somewhere in its middle part.", "Fifth answer.")
    # Per endpoint, in request order. Fault() is a request that succeeds.
    fake_sarvam.inject("stt", Fault.server_error(500), Fault(), Fault(), Fault(), Fault(hang=True))
    fake_sarvam.inject("chat", Fault(), Fault.rate_limited(), Fault(), Fault(cut=True))
    # greeting (2 sentences), turn 1, turn 2 (backup LLM's reply), turn 3: garbage
    fake_sarvam.inject("tts", Fault(), Fault(), Fault(), Fault(), Fault(malformed=True))

    def services(s: Any) -> Any:
        sarvam = configured_engines(s)
        return configured_engines(s, stt=sarvam.stt + [backup_stt], llm=sarvam.llm + [backup_llm],
                                  tts=sarvam.tts + [backup_tts])

    with live_server(settings, engines=services) as server:
        result = await place_call(server.url, [EN[i % 3] for i in range(5)], language="en-IN", reply_wait_s=8)
        from tests.e2e.test_multilingual_sarvam import fetch_record

        record = await fetch_record(server, result.call_id)
        left = server.wait_tasks_settled()

    # The caller heard an answer after every turn, and stayed on the line until it hung up.
    assert len(result.latencies_ms) == 5, [(t.index, t.latency_ms) for t in result.turns]
    assert not result.closed_by_server
    # Turn 1: Sarvam STT 500 -> the backup STT. Turn 5: Sarvam STT hangs past 1 s -> the backup.
    assert len(backup_stt.calls) == 2
    # Turn 2: Sarvam chat 429 -> the backup LLM answered and was spoken.
    assert len(backup_llm.calls) == 1
    spoken = [r["json"]["text"] for r in fake_sarvam.calls("tts")]
    assert "Backup answer." in spoken
    # Turn 3: Sarvam TTS answered garbage -> the backup voice spoke the sentence.
    assert [text for text, _ in backup_tts.calls] == ["Third answer."]
    # Turn 4: the chat stream was cut mid-way: what arrived was spoken, the turn records the break.
    turns = record["turns"]
    assert len(turns) == 5
    cut = turns[3]
    assert cut["reply"] and "This fourth answer".startswith(cut["reply"][:18])
    assert any(e["stage"] == "llm" for e in cut["errors"]), cut["errors"]
    # The record says who answered each stage of each turn.
    assert [t["providers"]["stt"] for t in turns] == ["backup-stt", "sarvam", "sarvam", "sarvam", "backup-stt"]
    assert [t["providers"]["llm"] for t in turns] == ["sarvam", "backup-llm", "sarvam", "sarvam", "sarvam"]
    assert turns[2]["providers"]["tts"] == "backup-tts"
    # Nothing left running on the server once the call ended.
    assert left == [], left
    assert not logs.tracebacks(), logs.tracebacks()[:3]


async def test_when_every_llm_fails_the_caller_hears_the_polite_line_and_the_next_turn_works(logs):
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, llm_timeout_s=0.5)
    tts = ScriptedTTS(sample_rate=8000, ms_per_char=10, chunk_ms=100)
    llm = ScriptedLLM(replies=("All good now.",), failures=["hang"])
    with live_server(settings, engines=lambda s: scripted_engines(llm=llm, tts=tts)) as server:
        result = await place_call(server.url, EN[:2], language="en-IN")
        left = server.wait_tasks_settled()
    from sutradhar.text.languages import LANGUAGES

    spoken = [text for text, _ in tts.calls]
    assert LANGUAGES["en-IN"].trouble.split(".")[0] in " ".join(spoken)
    assert "All good now." in spoken
    assert len(result.latencies_ms) == 2
    assert left == []


async def test_breaker_opens_after_threshold_and_a_probe_closes_it_during_a_call(logs):
    port = free_port()
    # speculate=False: the LLM calls counted below are the turns' (a reply prepared at a pause
    # inside a sentence and undone would be one more)
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, breaker_failure_threshold=2,
                            breaker_reset_s=2.0, breaker_probe_interval_s=2.0, speculate=False)
    boom = ProviderError("upstream 503", status=503)
    primary = ScriptedLLM(name="primary-llm", replies=("Primary answer.",),
                          failures=[RateLimited("429", status=429), boom])
    backup = ScriptedLLM(name="backup-llm", replies=("Backup answer.",))
    tts = ScriptedTTS(sample_rate=8000, ms_per_char=10, chunk_ms=100)
    breakers = BreakerLog()

    # Turns 1-2 fail on the primary (breaker opens), turn 3 skips it, the probe 2 s later closes it,
    # turn 4 comes after that.
    turns = [EN[0], EN[1], EN[2], caller_turn(EN[0], lead_ms=9000)]
    with live_server(settings, engines=scripted_engines(llm=[primary, backup], tts=tts)) as server:
        server.services.router.listeners.append(breakers)
        result = await place_call(server.url, turns, language="en-IN")
        async with httpx.AsyncClient(base_url=server.url) as client:
            health = (await client.get("/health")).json()

    llm_changes = [(state, at) for at, stage, provider, state in breakers.changes if provider == "primary-llm"]
    states = [state for state, _ in llm_changes]
    assert states[:3] == ["open", "half_open", "closed"], breakers.changes
    opened, closed = llm_changes[0][1], llm_changes[2][1]
    assert closed - opened >= 2.0
    assert len(primary.calls) == 4  # turns 1, 2, the probe (the half-open trial) and turn 4
    assert len(backup.calls) == 3  # turns 1, 2, 3
    assert len(result.latencies_ms) == 4
    spoken = [text for text, _ in tts.calls]
    assert spoken.count("Backup answer.") == 3 and spoken.count("Primary answer.") == 1
    status = {(p["stage"], p["provider"]): p["breaker"] for p in health.get("providers", [])} if isinstance(
        health.get("providers"), list) else {}
    if status:
        assert status[("llm", "primary-llm")] == "closed"


async def test_a_tts_stream_cut_mid_sentence_keeps_what_was_said_and_the_call_goes_on(fake_openai, logs):
    port = free_port()
    settings = e2e_settings(llm=["scripted"], tts=["openai"], openai_base_url=fake_openai.base_url,
                            openai_api_key=fake_openai.api_key, public_url=f"http://127.0.0.1:{port}", port=port)
    llm = ScriptedLLM(replies=("This first sentence will be cut off in the middle. The second one is whole.",
                               "Still here."))
    # greeting (2 sentences), then the first reply sentence is cut half-way through its audio.
    fake_openai.inject("tts", fakes.Fault(), fakes.Fault(), fakes.Fault(cut=True))
    with live_server(settings, engines=lambda s: configured_engines(s, llm=llm)) as server:
        result = await place_call(server.url, [EN[0], EN[1]], language="en-IN")
        from tests.e2e.test_multilingual_sarvam import fetch_record

        record = await fetch_record(server, result.call_id)
        left = server.wait_tasks_settled()
    spoken = [r["json"]["input"] for r in fake_openai.calls("tts")]
    assert "The second one is whole." in spoken and "Still here." in spoken
    first = record["turns"][0]
    assert any(e["stage"] == "tts" for e in first["errors"]), first["errors"]
    assert len(result.latencies_ms) == 2 and agent_audio_rms(result) > 300
    assert left == [] and not logs.tracebacks()
