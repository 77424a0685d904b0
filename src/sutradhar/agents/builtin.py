"""Built-in tools: the session's own actions, offered to the LLM. The keyword intents
(`pipeline/intents.py`) stay as the offline path to the same actions."""

from __future__ import annotations

from typing import Any

from sutradhar.agents.tools import Tool, ToolContext, tool
from sutradhar.pipeline.intents import LANGUAGE_NAMES


@tool
async def end_call(context: ToolContext) -> dict[str, Any]:
    """End the call after your reply, when the caller has said goodbye or has nothing more to ask."""
    context.request("end_call")
    return {"ok": True, "note": "Say a short goodbye; the call ends after it."}


@tool
async def transfer_to_human(context: ToolContext) -> dict[str, Any]:
    """Hand the call to a human agent, when the caller asks for a person or you cannot help."""
    context.request("transfer")
    return {"ok": True, "note": "Tell the caller you are connecting them to a person."}


@tool
async def switch_language(language: str, context: ToolContext) -> dict[str, Any]:
    """Speak another language from now on, when the caller asks for it. `language` is a code
    such as hi-IN, or a language name such as Hindi."""
    code = _language_code(language, context.languages)
    if code is None:
        return {"ok": False, "error": f"not a language of this line: {language}",
                "languages": list(context.languages)}
    context.switch_to = code
    return {"ok": True, "language": code}


def _language_code(value: str, languages: tuple[str, ...]) -> str | None:
    wanted = value.strip().lower()
    for code in languages:
        if wanted in (code.lower(), code.split("-")[0].lower()) or wanted in LANGUAGE_NAMES.get(code, ()):
            return code
    return None


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (end_call, transfer_to_human, switch_language)}
