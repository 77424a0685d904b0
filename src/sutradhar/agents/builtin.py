"""Built-in tools: the session's own actions, offered to the LLM. The keyword intents
(`pipeline/intents.py`) stay as the offline path to the same actions."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from sutradhar.agents.tools import Tool, ToolContext, tool
from sutradhar.audio.dtmf import DTMF_KEYS
from sutradhar.pipeline.intents import LANGUAGE_NAMES
from sutradhar.pipeline.keypad import KeypadUnavailable

# A collection ends by itself within this (whatever its per-key timeout), inside the tool's own
# timeout, so the LLM always gets the keys pressed so far rather than a timeout error.
COLLECT_MAX_S = 90.0
COLLECT_TOOL_TIMEOUT_S = COLLECT_MAX_S + 30.0  # room for the prompt to be said


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


@tool(timeout_s=COLLECT_TOOL_TIMEOUT_S, waits_for_commit=True)
async def collect_digits(prompt: str, context: ToolContext,
                         max_digits: Annotated[int, Field(ge=1, le=32)] = 16,
                         finish_on_key: Annotated[str, Field(pattern=r"^[0-9*#]?$")] = "#",
                         timeout_s: Annotated[float, Field(gt=0, le=30)] = 8.0) -> dict[str, Any]:
    """Say `prompt` and collect the keys the caller presses on their phone's keypad (an order
    number, a PIN), until `finish_on_key`, `max_digits` keys, or `timeout_s` seconds without a key.
    Returns the digits pressed (so far, on a timeout); if the caller spoke instead, `said` holds
    their words."""
    if context.keypad is None:
        return {"ok": False, "error": "this call has no keypad"}
    if context.say is not None and prompt.strip():
        context.say(prompt.strip())
    collected = await context.keypad.collect(max_digits, finish_on_key, timeout_s, total_s=COLLECT_MAX_S)
    return {"ok": True, **collected.as_dict()}


@tool(waits_for_commit=True)
async def send_dtmf(digits: Annotated[str, Field(min_length=1, max_length=32)],
                    context: ToolContext) -> dict[str, Any]:
    """Press keys on the phone line (0-9, * and #), for example to choose an option in another
    company's phone menu on a call you placed."""
    unknown = sorted({d for d in digits if d not in DTMF_KEYS})
    if unknown:
        return {"ok": False, "error": f"not keypad keys: {''.join(unknown)}; use 0-9, * and #"}
    if context.keypad is None:
        return {"ok": False, "error": "this call has no keypad"}
    try:
        sent_by = await context.keypad.press(digits)
    except KeypadUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "digits": digits, "sent_by": sent_by}


def _language_code(value: str, languages: tuple[str, ...]) -> str | None:
    wanted = value.strip().lower()
    for code in languages:
        if wanted in (code.lower(), code.split("-")[0].lower()) or wanted in LANGUAGE_NAMES.get(code, ()):
            return code
    return None


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (end_call, transfer_to_human, switch_language,
                                                       collect_digits, send_dtmf)}
