"""A worker app for the multi-worker test: real Services (open_services, scripted engines) and the
admin routes, plus test-only routes: register a live call (a real, unstarted CallSession), store an
IVR language choice, fail a provider.

Run: uvicorn --app-dir tests/ops --factory worker_app:create_app (settings from the environment).
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request

from sutradhar.config import load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.server import admin
from sutradhar.services import Services, open_services
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run by uvicorn --app-dir tests/ops
from tests.support.calls import unstarted_session  # noqa: E402


def create_app() -> FastAPI:
    settings = load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = await open_services(settings, EngineSet([ScriptedSTT()], [ScriptedLLM()], [ScriptedTTS()]))
        app.state.services = services
        yield
        await services.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(admin.router)

    def services_of(request: Request) -> Services:
        return request.app.state.services

    @app.post("/test/calls/{call_id}")
    async def start_call(call_id: str, request: Request) -> dict:
        services = services_of(request)
        session = unstarted_session(services, call_id)
        orchestrator = session.orchestrator
        services.calls.register(session)
        await services.recorder.call_started(call_id, {"transport": "twilio", "language": "en-IN"})
        result = await orchestrator.process_turn(b"\x00\x10" * 8000)
        await services.recorder.turn_completed(call_id, {"turn_id": 1, "text": result["text"],
                                                         "reply": result["response"]})
        return {"ok": True}

    @app.delete("/test/calls/{call_id}")
    async def end_call(call_id: str, request: Request) -> dict:
        services = services_of(request)
        services.calls.unregister(call_id)
        await services.recorder.call_ended(call_id, "hangup", {"turns": 1})
        return {"ok": True}

    @app.put("/test/ivr/{call_sid}/{language}")
    async def ivr_choice(call_sid: str, language: str, request: Request) -> dict:
        await services_of(request).ivr_languages.set(call_sid, language)
        return {"ok": True}

    @app.get("/test/ivr/{call_sid}")
    async def ivr_lookup(call_sid: str, request: Request) -> dict:
        return {"language": await services_of(request).ivr_languages.get(call_sid)}

    @app.post("/test/stt-down")
    async def stt_down(request: Request) -> dict:
        slot = services_of(request).router.chains["stt"][0]
        for _ in range(settings.breaker_failure_threshold):
            slot.breaker.record_failure()
        return {"breaker": slot.breaker.state.value}

    return app
