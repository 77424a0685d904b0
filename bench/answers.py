"""Do the offline engines' replies answer? The question set (data/offline_questions.yaml) through
the local LLM as a call uses it (the scripted responder first, the real `order_status` tool on the
demo orders, the model for the rest), each reply scored by its expected facts.

Text in, text out: no STT or TTS, so a change to the prompt or the decoding is measured alone.
Per question: where the reply came from (script, tool, model), the time to its first clause and
to its end, and the expected facts it misses.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import summarize


async def _ask(llm: Any, tool: Any, history: list[Any], question: str) -> dict[str, Any]:
    from sutradhar.agents.tools import ToolContext
    from sutradhar.engines.base import Message, ToolCall
    from sutradhar.pipeline.intents import detect_intent
    from sutradhar.text.languages import LANGUAGES

    messages = [*history, Message("user", question)]
    action = detect_intent(question)
    if action is not None and action.kind == "human":
        # The orchestrator acts on this before any LLM is asked: the transfer line.
        return {"reply": LANGUAGES["en-IN"].transfer, "source": "action", "first_clause_ms": None,
                "total_ms": None}
    began = time.monotonic()
    first: float | None = None
    text: list[str] = []
    source = "model"
    for _round in range(2):
        calls: list[ToolCall] = []
        async for delta in llm.stream(messages, "en-IN", [tool.schema()]):
            if isinstance(delta, ToolCall):
                calls.append(delta)
                continue
            first = first or time.monotonic()
            text.append(delta)
        if not calls:
            break
        source = "tool"
        results = [json.dumps(await tool.handler(json.loads(c.arguments), ToolContext("bench", "en-IN")))
                   for c in calls]
        messages += [Message("assistant", "", tuple(calls)),
                     *(Message("tool", r, tool_call_id=c.id) for c, r in zip(calls, results))]
    reply = "".join(text).strip()
    if source == "model" and llm.script.respond(messages[:len(history) + 1], "en-IN", {tool.name}):
        source = "script"
    done = time.monotonic()
    return {"reply": reply, "source": source,
            "first_clause_ms": round((first - began) * 1000, 1) if first else None,
            "total_ms": round((done - began) * 1000, 1)}


async def run_answers(models_dir: str | None = None) -> dict[str, Any]:
    from sutradhar.agents.demo_orders import DemoOrders, order_status_tool
    from sutradhar.config import load_settings
    from sutradhar.engines.base import Message
    from sutradhar.engines.local import default_gguf
    from sutradhar.engines.local.llama import LocalLLM
    from sutradhar.engines.local.responder import Script
    from sutradhar.testing.questions import load_questions

    overrides: dict[str, Any] = {"_env_file": None}
    if models_dir:
        overrides["models_dir"] = models_dir
    settings = load_settings(**overrides)
    llm = LocalLLM(model_path=default_gguf(settings), max_tokens=settings.llm_max_tokens,
                   threads=settings.llm_threads, languages=frozenset({"en-IN"}),
                   script=Script.load(settings.responder_path or None))
    t0 = time.monotonic()
    await llm.warm_up()
    warm_s = time.monotonic() - t0
    tool = order_status_tool(DemoOrders(Path(tempfile.mkdtemp(prefix="sutradhar-answers-")) / "orders.db"))
    groups: dict[str, Any] = {}
    try:
        for group in ("call", "llm"):
            rows = []
            history: list[Message] = []
            for q in load_questions(group):
                row = await _ask(llm, tool, history if group == "call" else [], q.text)
                # The call set is one call: each question sees the turns before it.
                history += [Message("user", q.text), Message("assistant", row["reply"])]
                rows.append({"key": q.key, "domain": q.domain, "question": q.text, **row,
                             "missing": q.missing(row["reply"])})
            groups[group] = {
                "answered": sum(not r["missing"] for r in rows), "questions": len(rows),
                "first_clause_ms": summarize(r["first_clause_ms"] for r in rows if r["source"] == "model"),
                "rows": rows}
    finally:
        await llm.aclose()
    return {"model": str(llm.model_path), "warm_up_s": round(warm_s, 2),
            "max_tokens": min(llm.max_tokens, llm.prompt.max_tokens),
            "threads": llm.threads, "groups": groups}


def run(models_dir: str | None) -> dict[str, Any]:
    return asyncio.run(run_answers(models_dir))
