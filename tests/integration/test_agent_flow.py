"""The appointment example agent on the real server (uvicorn on a loopback port, browser calls,
the call store on), offline: the scripted responder walks its two-state flow in Telugu and
Gujarati, books in the demo calendar, and after the call the results are stored with the call
record (GET /calls/{id}) and sent, signed, to the agent's results webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
import yaml

from sutradhar.agents.result_delivery import SIGNATURE_HEADER
from sutradhar.engines.local.responder import ScriptedResponder
from sutradhar.engines.registry import EngineSet
from sutradhar.testing.scripted import ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.results_webhook import ResultsReceiver
from tests.support.server import free_port, live_server, make_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "appointment" / "agent.yaml"
SECRET = "clinic-secret"


def agent_with_webhook(tmp_path: Path, url: str) -> Path:
    agent = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    agent["results"]["webhook"] = {"url": url, "secret_env": "CLINIC_WEBHOOK_SECRET"}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(agent, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(("language", "says", "replies"), [
    ("te-IN", ["నాకు అపాయింట్‌మెంట్ కావాలి", "సోమవారం పది గంటలకు", "అవును"],
     ["తప్పకుండా. ఏ రోజు, ఏ సమయానికి కావాలి?",
      "అయితే సోమవారం పది గంటలకు. బుక్ చేయమంటారా?",
      "మీ అపాయింట్‌మెంట్ సోమవారం పది గంటలకు బుక్ అయింది. మీ రిఫరెన్స్ నంబర్ A1003."]),
    ("gu-IN", ["મારે એપોઇન્ટમેન્ટ બુક કરવી છે", "શુક્રવારે ત્રણ વાગ્યે", "હા, બરાબર"],
     ["ચોક્કસ. કયા દિવસે અને કેટલા વાગ્યે?",
      "તો શુક્રવાર, ત્રણ વાગ્યે. બુક કરું?",
      "તમારી એપોઇન્ટમેન્ટ શુક્રવાર, ત્રણ વાગ્યે બુક થઈ ગઈ છે. તમારો રેફરન્સ નંબર A1003 છે."]),
])
async def test_the_appointment_agent_books_through_its_flow_and_sends_the_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str, says: list[str],
        replies: list[str]) -> None:
    monkeypatch.setenv("CLINIC_WEBHOOK_SECRET", SECRET)
    port = free_port()
    async with ResultsReceiver() as receiver:
        settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                                 database_url="", redis_url="",
                                 admin_token="admin-token-for-tests",
                                 agent_path=str(agent_with_webhook(tmp_path, receiver.url)))
        engines = EngineSet([ScriptedSTT()], [ScriptedResponder()], [ScriptedTTS(ms_per_char=2, chunk_ms=100)])
        with live_server(settings, engines) as srv:
            result = await simulate(SimConfig(srv.url, [CallerTurn(text=t) for t in says], carrier="browser",
                                              language=language, timeout_s=60))
            await asyncio.wait_for(receiver.delivered.wait(), 30)
            srv.run(srv.services.results.drain())  # the delivery is recorded
            srv.run(srv.services.store.flush())
            async with httpx.AsyncClient(base_url=srv.url) as client:
                [listed] = (await client.get("/calls", headers={"Authorization": "Bearer admin-token-for-tests"})).json()["calls"]
                auth = {"Authorization": "Bearer admin-token-for-tests"}
                stored = (await client.get(f"/calls/{listed['call_id']}", headers=auth)).json()
                page = (await client.get(f"/console/calls/{listed['call_id']}", headers=auth)).text
    turns = [e for e in result.events if e.get("type") == "turn"]
    assert [t["reply"] for t in turns] == replies
    assert [t["state"] for t in turns] == ["collect", "confirm", "confirm"]
    assert [t["state"] for t in stored["turns"]] == ["collect", "confirm", "confirm"]
    assert [[c["name"] for c in t["tool_calls"]] for t in stored["turns"]] == [
        [], ["confirm_details"], ["book_appointment"]]
    extracted = stored["results"]["extracted"]
    assert extracted["booked"] is True and extracted["reference"] == "A1003"
    assert stored["results"]["webhook"]["delivery"] == "sent"
    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    payload = json.loads(body)
    assert payload["agent"] == "appointment" and payload["language"] == language
    assert payload["state"] == "confirm" and payload["extracted"] == extracted
    # The operator console shows the same: each turn's state, the results and their delivery.
    assert page.count('"badge">state: confirm') == 2 and page.count('"badge">state: collect') == 1
    assert "<h2>Results</h2>" in page and "webhook sent after 1 attempt(s)" in page
