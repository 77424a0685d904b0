"""A worker app for the multi-worker test: real Services (scripted engines), the operations wiring
and the admin routes, plus three test-only routes standing in for telephony until the real
call session drives them: register a live call, store an IVR language choice, fail a provider.

Run: uvicorn --app-dir tests/ops --factory worker_app:create_app (settings from the environment).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from sutradhar import admin, operations
from sutradhar.config import load_settings
from sutradhar.providers.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.services import Services, router_from_settings


@dataclass
class FakeSession:
    orchestrator: Any
    transport: str = "twilio"


def create_app() -> FastAPI:
    settings = load_settings()
    services = Services(settings, router_from_settings(settings, [ScriptedSTT()], [ScriptedLLM()],
                                                       [ScriptedTTS()]))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await operations.start(services)
        app.state.services = services
        yield
        await services.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(admin.router)

    @app.post("/test/calls/{call_id}")
    async def start_call(call_id: str) -> dict:
        orchestrator = services.new_orchestrator(call_id)
        services.calls.register(call_id, FakeSession(orchestrator))
        await services.recorder.call_started(call_id, {"transport": "twilio", "language": "en-IN"})
        result = await orchestrator.process_turn(b"\x00\x10" * 8000)
        await services.recorder.turn_completed(call_id, {"turn_id": 1, "text": result["text"],
                                                         "reply": result["response"]})
        return {"ok": True}

    @app.delete("/test/calls/{call_id}")
    async def end_call(call_id: str) -> dict:
        services.calls.unregister(call_id)
        await services.recorder.call_ended(call_id, "hangup", {"turns": 1})
        return {"ok": True}

    @app.put("/test/ivr/{call_sid}/{language}")
    async def ivr_choice(call_sid: str, language: str) -> dict:
        await services.ivr_languages.set(call_sid, language)
        return {"ok": True}

    @app.get("/test/ivr/{call_sid}")
    async def ivr_lookup(call_sid: str) -> dict:
        return {"language": await services.ivr_languages.get(call_sid)}

    @app.post("/test/stt-down")
    async def stt_down() -> dict:
        slot = services.router.chains["stt"][0]
        for _ in range(settings.breaker_failure_threshold):
            slot.breaker.record_failure()
        return {"breaker": slot.breaker.state.value}

    return app
