"""First audio of a turn with a tool call, against a turn without one, in process.

    no_tools       LLM first token -> first sentence -> TTS first chunk
    tool           LLM round 1 (decides on the tool) -> tool -> LLM round 2 -> TTS
    tool_prefetch  the tool starts with the turn (TOOL_PREFETCH), alongside round 1

Issue #15's target: a turn with a tool speaks within tool time + the normal first-audio time,
i.e. `tool_prefetch` <= `no_tools` + tool_ms. Without the prefetch round 1 is on top of that.
Each turn runs on a fresh orchestrator (the context does not grow) with a typed utterance (STT
is not on the tool path), scripted LLM and TTS delays and a scripted `order_status` tool that
sleeps `tool_ms` and declares the same prefetch rule as the packaged one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.common import summarize, table

CALLER = "Where is my order 4567?"
ANSWER = "Your order 4567 has shipped. It should reach you in two days, and you will get a message."
MODES = ("no_tools", "tool", "tool_prefetch")


def _orchestrator(mode: str, llm_first_token_ms: float, llm_token_ms: float, tts_first_chunk_ms: float,
                  tool_ms: float) -> Any:
    from sutradhar.agents.demo_orders import ORDER_WORDS
    from sutradhar.agents.prefetch import spoken_number_rule
    from sutradhar.agents.tools import ToolBox, tool
    from sutradhar.engines.base import Message, ToolCall
    from sutradhar.pipeline.orchestrator import AgentOrchestrator
    from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS

    @tool(name="order_status", idempotent=True, prefetch=spoken_number_rule("order_id", ORDER_WORDS))
    async def order_status(order_id: str) -> dict[str, Any]:
        """Look up an order by its number."""
        await asyncio.sleep(tool_ms / 1000)
        return {"found": True, "order_id": order_id, "status": "shipped", "eta_days": 2}

    def respond(messages: Sequence[Message], language: str) -> Any:
        if mode == "no_tools" or messages[-1].role == "tool":
            return ANSWER
        return ToolCall("call_1", "order_status", '{"order_id": "4567"}')

    llm = ScriptedLLM(responder=respond, first_token_delay_s=llm_first_token_ms / 1000,
                      token_delay_s=llm_token_ms / 1000)
    tts = ScriptedTTS(first_chunk_delay_s=tts_first_chunk_ms / 1000, ms_per_char=1)
    box = ToolBox([order_status]) if mode != "no_tools" else ToolBox()
    return AgentOrchestrator(llm=llm, tts=tts, tools=box, call_id=f"bench-{mode}",
                             tool_prefetch=mode == "tool_prefetch")


async def _turn(orch: Any) -> dict[str, Any]:
    from sutradhar.pipeline.events import ReplyAudio, TurnCompleted, Utterance

    ended = time.monotonic()
    first: float | None = None
    record = None
    async for event in orch.respond(Utterance(b"", 16000, ended, text=CALLER)):
        if first is None and isinstance(event, ReplyAudio):
            first = time.monotonic()
        elif isinstance(event, TurnCompleted):
            record = event.record
    assert record is not None
    return {"first_audio_ms": None if first is None else (first - ended) * 1000,
            "tool_calls": len(record.tool_calls),
            "prefetched": sum(1 for c in record.tool_calls if c.get("prefetched")),
            "errors": len(record.errors)}


async def run(turns: int = 20, llm_first_token_ms: float = 200.0, llm_token_ms: float = 0.0,
              tts_first_chunk_ms: float = 100.0, tool_ms: float = 300.0) -> dict[str, Any]:
    delays = {"llm_first_token_ms": llm_first_token_ms, "llm_token_ms": llm_token_ms,
              "tts_first_chunk_ms": tts_first_chunk_ms, "tool_ms": tool_ms}
    modes: dict[str, Any] = {}
    for mode in MODES:
        await _turn(_orchestrator(mode, **delays))  # warm-up: imports, first-call caches
        rows = [await _turn(_orchestrator(mode, **delays)) for _ in range(turns)]
        modes[mode] = {"first_audio_ms": summarize(r["first_audio_ms"] for r in rows),
                       "tool_calls": sum(r["tool_calls"] for r in rows),
                       "prefetched": sum(r["prefetched"] for r in rows),
                       "errors": sum(r["errors"] for r in rows), "turns": len(rows)}
    base = modes["no_tools"]["first_audio_ms"]["p50"]
    target = None if base is None else round(base + tool_ms, 1)
    return {"delays_ms": delays, "turns": turns, "modes": modes, "target_ms": target,
            "met": {m: (v["first_audio_ms"]["p50"] or 1e9) <= (target or 0) + 20  # 20 ms: timer slack
                    for m, v in modes.items() if m != "no_tools"}}


def tools_table(result: dict[str, Any]) -> str:
    rows = [[mode, v["turns"], v["first_audio_ms"]["p50"], v["first_audio_ms"]["p95"], v["tool_calls"],
             v["prefetched"], v["errors"], result["met"].get(mode, "-")]
            for mode, v in result["modes"].items()]
    d = result["delays_ms"]
    return (f"LLM first token {d['llm_first_token_ms']:.0f} ms, TTS first chunk {d['tts_first_chunk_ms']:.0f} ms, "
            f"tool {d['tool_ms']:.0f} ms; target (no-tools p50 + tool) {result['target_ms']} ms\n\n"
            + table(rows, ["mode", "turns", "first audio p50", "p95", "tool calls", "prefetched", "errors",
                           "within target"]))
