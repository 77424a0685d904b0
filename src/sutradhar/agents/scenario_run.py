"""Run one scenario as a call: the call simulator speaks the caller's turns into the real server
(espeak-ng in the scenario's language, or the turn's WAV file), then the call's stored record is
checked against what must happen (`scenario_checks`).

How the caller's words reach the server:
  - speech over the scenario's transport: Twilio (8 kHz mu-law, the phone line) or the browser
    socket (16 kHz PCM, kinder to an offline STT);
  - typed over the browser socket, when the server's STT chain cannot transcribe the scenario's
    language (offline, Whisper tiny.en serves English only) or with `--engines scripted`: the STT is
    skipped and every other stage (language, tools, LLM, TTS, the record) runs as in a real call.
The verdict says which one ran, so a typed pass is never mistaken for a spoken one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sutradhar.agents.scenario_checks import ScenarioVerdict, check_call
from sutradhar.agents.scenarios import Scenario, Turn
from sutradhar.audio.codecs import read_wav_file
from sutradhar.testing.agent_server import AgentServer
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate

RECORD_WAIT_S = 20.0  # for the call's record to show its end (and post-call results) after hang-up


@dataclass(frozen=True)
class Delivery:
    """How a scenario's turns reach the server: `typed` text over the browser socket, or speech."""

    carrier: str
    typed: bool
    note: str

    @classmethod
    def choose(cls, scenario: Scenario, engines: str, stt_languages: frozenset[str] | None,
               typed: bool = False) -> Delivery:
        """`stt_languages`: what the server's STT chain transcribes (None: every language)."""
        if typed or engines == "scripted":
            why = "--typed" if typed else "--engines scripted"
            return cls("browser", True, f"typed over the browser socket ({why})")
        if stt_languages is not None and scenario.language not in stt_languages:
            return cls("browser", True, f"typed over the browser socket: this server's STT serves "
                                        f"{', '.join(sorted(stt_languages)) or 'no language'}, "
                                        f"not {scenario.language}")
        return cls(scenario.transport, False, f"speech over {scenario.transport}")


async def _speak(text: str, language: str) -> CallerTurn:
    from sutradhar.engines.local.espeak import EspeakTTS

    chunks = [chunk async for chunk in EspeakTTS().synthesize(text, language)]
    return CallerTurn(b"".join(c.pcm for c in chunks), chunks[0].sample_rate)


async def caller_turn(scenario: Scenario, turn: Turn, delivery: Delivery) -> CallerTurn:
    if delivery.typed:
        if turn.say is None:
            raise ValueError(f"{turn.wav}: a WAV turn cannot be typed ({delivery.note})")
        return CallerTurn(text=turn.say)
    if turn.wav is not None:
        pcm, rate = read_wav_file(str(scenario.wav_path(turn)))
        return CallerTurn(pcm, rate)
    assert turn.say is not None
    return await _speak(turn.say, scenario.language)


def said(turn: Turn) -> str:
    return turn.say if turn.say is not None else f"[{turn.wav}]"


async def fetch_record(server: AgentServer, call_id: str, want_results: bool) -> dict[str, Any]:
    """The call's record once the store shows it ended (its writes are queued after hang-up),
    and, when the scenario checks them, once post-call results are no longer pending."""
    deadline = time.monotonic() + RECORD_WAIT_S
    record: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=10) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/calls/{call_id}")
            if response.status_code == 200:
                record = response.json()
                ended = record.get("ended_at") is not None
                pending = want_results and "results" in record and record["results"] is None
                if ended and not pending:
                    return record
            await asyncio.sleep(0.2)
    if not record:
        raise RuntimeError(f"no call record for {call_id} within {RECORD_WAIT_S:.0f}s")
    return record


def _call_id(result: Any) -> str:
    started = next((e for e in result.events if e.get("type") == "started"), None)
    return str(started["call_id"]) if started and started.get("call_id") else result.call_id


async def run_scenario(server: AgentServer, scenario: Scenario, delivery: Delivery,
                       reply_wait_s: float = 45.0) -> ScenarioVerdict:
    verdict = ScenarioVerdict(scenario, input_mode=delivery.note)
    started = time.monotonic()
    try:
        turns = [await caller_turn(scenario, t, delivery) for t in scenario.turns]
        result = await simulate(SimConfig(
            server.url, turns, carrier=delivery.carrier, language=scenario.language,
            token=server.browser_token if delivery.carrier == "browser" else None,
            auth_token=server.twilio_token if delivery.carrier == "twilio" else None, webhook=False,
            admin_token=server.admin_token, reply_wait_s=reply_wait_s, gap_s=0.6, tail_s=1.5,
            timeout_s=60 + reply_wait_s * len(turns)))
        verdict.call_id = _call_id(result)
        record = await fetch_record(server, verdict.call_id, scenario.end.results is not None)
        verdict.turns, verdict.ending = check_call(scenario, [said(t) for t in scenario.turns], record)
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the others
        verdict.error = f"{type(exc).__name__}: {exc}"
    verdict.seconds = round(time.monotonic() - started, 1)
    return verdict


def stt_languages(server: AgentServer) -> frozenset[str] | None:
    """The languages the server's STT chain transcribes (None: any), from the same settings the
    child process reads. The providers are only constructed here; no model is loaded."""
    from sutradhar.agents.spec import load_agent
    from sutradhar.config import load_settings
    from sutradhar.engines.registry import build_engines

    agent = load_agent(server.agent)
    settings = load_settings(**{**server.settings_overrides(), **agent.settings_overrides()})
    served: set[str] = set()
    for provider in build_engines(settings).stt:
        if provider.languages is None:
            return None
        served |= provider.languages
    return frozenset(served)
