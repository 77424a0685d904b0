"""The real server on a free loopback port answers /health with every provider's state."""

import asyncio
import socket

import httpx
import uvicorn

from sutradhar.config import load_settings
from sutradhar.providers.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.server import create_app
from sutradhar.services import Services, router_from_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_health_over_real_http(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(port=free_port())
    services = Services(settings, router_from_settings(settings, [ScriptedSTT()], [ScriptedLLM()],
                                                       [ScriptedTTS()]))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), host="127.0.0.1",
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
