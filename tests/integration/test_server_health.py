"""The real server on a free loopback port answers /health with every provider's state."""

import asyncio

import httpx
import uvicorn

from sutradhar.config import load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.server.app import create_app
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from tests.support.server import free_port


async def test_health_over_real_http(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(port=free_port())
    engines = EngineSet([ScriptedSTT()], [ScriptedLLM()], [ScriptedTTS()])
    server = uvicorn.Server(uvicorn.Config(create_app(settings, engines=engines), host="127.0.0.1",
                                           port=settings.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{settings.port}/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert {p["provider"] for p in body["providers"]} == {"scripted-stt", "scripted-llm", "scripted-tts"}
    finally:
        server.should_exit = True
        await task
