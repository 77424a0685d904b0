"""Tools on the real server (uvicorn on a loopback port, a browser call, the call store on): the LLM
calls a tool mid-call, the caller hears the answer, and the call shows in GET /calls/{id} and
/metrics. Offline, the scripted responder answers an order question from the demo backend."""

from __future__ import annotations

import httpx
import pytest

from sutradhar.engines.base import ToolCall
from sutradhar.engines.local.responder import ScriptedResponder
from sutradhar.engines.registry import EngineSet
from sutradhar.ops.prometheus import Telemetry
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.server import free_port, live_server, make_settings


def settings_for(tmp_path, **overrides):
    port = free_port()
    return make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                         database_url="", redis_url="", **overrides)


def engines(llm) -> EngineSet:
    return EngineSet([ScriptedSTT()], [llm], [ScriptedTTS(ms_per_char=5, chunk_ms=100)])


async def call_and_fetch(srv, text: str, language: str) -> tuple[list[dict], dict]:
    result = await simulate(SimConfig(srv.url, [CallerTurn(text=text)], carrier="browser",
                                      language=language, timeout_s=30))
    turns = [e for e in result.events if e.get("type") == "turn"]
    srv.run(srv.services.store.flush())  # the call's records are written before we read them
    async with httpx.AsyncClient(base_url=srv.url) as client:
        [listed] = (await client.get("/calls")).json()["calls"]  # the browser picks no call id
        stored = (await client.get(f"/calls/{listed['call_id']}")).json()
    return turns, stored


async def test_a_scripted_llm_calls_a_tool_and_the_call_record_shows_it(tmp_path, monkeypatch) -> None:
    from sutradhar.ops import prometheus

    monkeypatch.setattr(prometheus, "default", Telemetry())  # this server's counters only
    llm = ScriptedLLM(replies=(ToolCall("call_1", "order_status", '{"order_id": "4567"}'),
                               "Your order 4567 has been shipped."))
    with live_server(settings_for(tmp_path), engines(llm)) as srv:
        turns, stored = await call_and_fetch(srv, "where is my order 4567", "en-IN")
        async with httpx.AsyncClient(base_url=srv.url) as client:
            metrics = (await client.get("/metrics")).text
    assert [t["reply"] for t in turns] == ["Your order 4567 has been shipped."]
    assert llm.tools_seen[0] == ["end_call", "transfer_to_human", "switch_language", "order_status"]
    tool_message = llm.calls[1][-1]
    assert tool_message.role == "tool" and '"status": "shipped"' in tool_message.content
    [stored_turn] = stored["turns"]
    [record] = stored_turn["tool_calls"]
    assert (record["name"], record["arguments"], record["error"]) == ("order_status", {"order_id": "4567"}, None)
    assert record["result_chars"] > 0 and record["duration_ms"] >= 0
    # The caller's words settled the lookup: it ran alongside LLM round 1, once (agents/prefetch.py).
    assert record["prefetched"] is True and record["id"] == "call_1"
    assert 'sutradhar_tool_calls_total{outcome="ok",tool="order_status"} 1.0' in metrics


async def test_with_tool_prefetch_off_the_tool_waits_for_the_llm(tmp_path) -> None:
    llm = ScriptedLLM(replies=(ToolCall("call_1", "order_status", '{"order_id": "4567"}'),
                               "Your order 4567 has been shipped."))
    with live_server(settings_for(tmp_path, tool_prefetch=False), engines(llm)) as srv:
        turns, stored = await call_and_fetch(srv, "where is my order 4567", "en-IN")
    assert [t["reply"] for t in turns] == ["Your order 4567 has been shipped."]
    [record] = stored["turns"][0]["tool_calls"]
    assert record["prefetched"] is False and record["error"] is None


@pytest.mark.parametrize(("language", "question", "answer"), [
    ("en-IN", "where is order four five six seven?",
     "Order 4567 has been shipped and should reach you in 2 days."),
    ("hi-IN", "मेरा ऑर्डर चार पाँच छह सात कहाँ है?",
     "ऑर्डर 4567 भेज दिया गया है और 2 दिन में आप तक पहुँच जाना चाहिए।"),
])
async def test_offline_the_responder_answers_an_order_question_from_the_demo_backend(
        tmp_path, language: str, question: str, answer: str) -> None:
    with live_server(settings_for(tmp_path), engines(ScriptedResponder())) as srv:
        turns, stored = await call_and_fetch(srv, question, language)
    assert [t["reply"] for t in turns] == [answer]
    [record] = stored["turns"][0]["tool_calls"]
    assert record["name"] == "order_status" and record["arguments"] == {"order_id": "4567"}
    assert record["prefetched"] is True  # the responder asked for exactly the prefetched lookup
    assert (tmp_path / "demo_orders.db").is_file()


async def test_serve_with_the_example_agent_answers_in_its_default_language(tmp_path) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "order-status" / "agent.yaml"
    with live_server(settings_for(tmp_path, agent_path=str(example), languages="te-IN,gu-IN",
                                  default_language="te-IN",
                                  tools=""), engines(ScriptedResponder())) as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(text="मेरा ऑर्डर एक दो तीन चार कहाँ है")],
                                          carrier="browser", timeout_s=30))
        assert srv.services.settings.languages == ["hi-IN", "en-IN", "te-IN", "gu-IN"]  # the agent's, not LANGUAGES
    [started] = [e for e in result.events if e.get("type") == "started"]
    [turn] = [e for e in result.events if e.get("type") == "turn"]
    assert started["language"] == "hi-IN"
    assert turn["reply"] == "ऑर्डर 1234 पहले ही डिलीवर हो चुका है।"
