"""The admin HTTP API on a small app built from real Services (open_services) with scripted engines."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from sutradhar.config import load_settings
from sutradhar.engines.base import AuthError
from sutradhar.engines.registry import EngineSet
from sutradhar.ops.prometheus import Telemetry
from sutradhar.server import admin
from sutradhar.services import Services, open_services
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from tests.support.calls import unstarted_session

TOKEN = "s3cret-admin-token"


async def make_app(tmp_path, **overrides) -> tuple[FastAPI, Services]:
    options = dict(stt=["scripted"], llm=["scripted"], tts=["scripted"], data_dir=tmp_path,
                   admin_token=TOKEN, health_interval_s=0.2, redis_url="", database_url="")
    settings = load_settings(**{**options, **overrides})
    engines = EngineSet([ScriptedSTT(script=("namaste",))], [ScriptedLLM(replies=("Hello there.",))],
                        [ScriptedTTS()])
    services = await open_services(settings, engines, telemetry=Telemetry())
    app = FastAPI()
    app.include_router(admin.router)
    app.state.services = services
    return app, services


@pytest.fixture
async def app_services(tmp_path):
    app, services = await make_app(tmp_path)
    yield app, services
    await services.aclose()


@pytest.fixture
async def client(app_services):
    app, _ = app_services
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://admin") as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_status_and_calls_need_the_admin_token(client):
    for path in ("/status", "/calls", "/calls/x"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await client.get(path, headers={"Authorization": TOKEN})).status_code == 401
    assert (await client.get("/status", headers=AUTH)).status_code == 200
    assert (await client.get("/calls", headers=AUTH)).status_code == 200
    assert (await client.get("/calls/x", headers=AUTH)).status_code == 404
    assert (await client.get("/health")).status_code == 200  # open for load balancers
    assert (await client.get("/metrics")).status_code == 200


async def test_no_token_configured_means_open_admin_routes(tmp_path):
    app, services = await make_app(tmp_path, admin_token="")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a") as c:
            assert (await c.get("/status")).status_code == 200
    finally:
        await services.aclose()


async def test_health_reports_providers_and_database_and_503_without_a_usable_stage(app_services, client):
    _, services = app_services
    body = (await client.get("/health")).json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert {(p["stage"], p["provider"]) for p in body["providers"]} == {
        ("stt", "scripted-stt"), ("llm", "scripted-llm"), ("tts", "scripted-tts")}
    assert all(p["health"]["ok"] and p["breaker"] == "closed" for p in body["providers"])

    async def bad_key():
        raise AuthError("invalid api-subscription-key", provider="scripted-stt", status=403)

    services.router.chains["stt"][0].provider.health = bad_key
    await services.health.check_once()
    response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "no usable stt provider" in body["reasons"]
    assert any("AuthError" in r for r in body["reasons"])


async def test_status_shows_live_calls_and_the_aggregate_report(app_services, client):
    _, services = app_services
    session = unstarted_session(services, "CA-live", "hi-IN")
    await session.orchestrator.process_turn(b"\x00\x01" * 8000)
    services.calls.register(session)
    body = (await client.get("/status", headers=AUTH)).json()
    assert body["active_calls"] == 1
    call = body["calls"][0]
    assert call["call_id"] == "CA-live" and call["turn_count"] == 1
    # A real session's Transport and State enum, shown as the strings they stand for.
    assert call["transport"] == "twilio" and call["state"] == "listening" and call["language"] == "hi-IN"
    assert body["metrics"]["turns"] == 1 and "Turns: 1" in body["report"]
    services.calls.unregister("CA-live")


async def test_a_finished_turn_and_a_live_call_move_the_prometheus_metrics(app_services, client):
    _, services = app_services
    telemetry = services.telemetry
    before_turns = telemetry.value("sutradhar_turns_total", language="hi-IN")
    before_active = telemetry.value("sutradhar_active_calls")
    session = unstarted_session(services, "CA-metrics", "hi-IN")
    services.calls.register(session)
    assert telemetry.value("sutradhar_active_calls") == before_active + 1
    await session.orchestrator.process_turn(b"\x00\x01" * 8000)
    assert telemetry.value("sutradhar_turns_total", language="hi-IN") == before_turns + 1
    text = (await client.get("/metrics")).text
    # No frame went out (no session played it): audio ready is counted, the wire figure is not.
    assert "sutradhar_reply_audio_ready_seconds_bucket" in text
    assert "sutradhar_voice_to_voice_seconds_bucket" not in text
    assert 'sutradhar_stt_latency_seconds_count{language="hi-IN",provider="scripted-stt"}' in text
    services.calls.unregister("CA-metrics")
    assert telemetry.value("sutradhar_active_calls") == before_active


async def test_calls_are_listed_filtered_and_shown_with_their_turns(app_services, client):
    _, services = app_services
    recorder = services.recorder
    await recorder.call_started("CA1", {"transport": "exotel", "language": "te-IN",
                                        "started_at": "2025-03-01T10:00:00+05:30"})
    await recorder.turn_completed("CA1", {"turn_id": 1, "text": "namaskaram", "reply": "hello",
                                          "timings": {"v2v_ms": 700}})
    await recorder.call_ended("CA1", "hangup", {"turns": 1})
    await recorder.call_started("CA2", {"transport": "twilio", "language": "hi-IN",
                                        "started_at": "2025-03-02T10:00:00Z"})
    await recorder.flush()

    listed = (await client.get("/calls", headers=AUTH, params={"page_size": 1})).json()
    assert listed["total"] == 2 and [c["call_id"] for c in listed["calls"]] == ["CA2"]
    done = (await client.get("/calls", headers=AUTH, params={"status": "completed"})).json()
    assert [c["call_id"] for c in done["calls"]] == ["CA1"]
    telugu = (await client.get("/calls", headers=AUTH, params={"language": "te-IN",
                                                              "since": "2025-03-01",
                                                              "until": "2025-03-02"})).json()
    assert [c["call_id"] for c in telugu["calls"]] == ["CA1"]
    assert (await client.get("/calls", headers=AUTH, params={"since": "yesterday"})).status_code == 400
    call = (await client.get("/calls/CA1", headers=AUTH)).json()
    assert call["turns"][0]["text"] == "namaskaram" and call["turns"][0]["timings"]["v2v_ms"] == 700


async def test_a_database_that_will_not_start_leaves_calls_running_and_health_503(tmp_path):
    from tests.ops.conftest import free_port

    app, services = await make_app(
        tmp_path, database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        await services.recorder.turn_completed("CA", {"turn_id": 1})  # a no-op recorder, no error
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a") as c:
            response = await c.get("/health")
            assert response.status_code == 503
            assert any(r.startswith("database:") for r in response.json()["reasons"])
            assert (await c.get("/calls", headers=AUTH)).status_code == 503
        orchestrator = services.new_orchestrator("CA", "en-IN")
        assert (await orchestrator.process_turn(b"\x00\x01" * 8000))["response"]
    finally:
        await services.aclose()


async def test_a_live_call_on_another_worker_is_summed_up_by_it_or_else_mirrored(tmp_path, redis_url):
    from sutradhar.ops.live_calls import LiveCalls
    from sutradhar.ops.redis_client import connect_redis

    app, services = await make_app(tmp_path, redis_url=redis_url)
    redis = connect_redis(redis_url)
    other = LiveCalls(limit=10, telemetry=Telemetry(), redis=redis, worker="other-worker")
    session = unstarted_session(services, "CA-elsewhere")
    try:
        other.register(session)
        await other.heartbeat()  # mirrored into Redis
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://admin") as c:
            # the other worker is not listening (not started): the mirror, said to be partial
            mirrored = (await c.get("/telephony/calls/CA-elsewhere", headers=AUTH)).json()
            assert mirrored["partial"] is True and mirrored["worker"] == "other-worker"
            assert "context" not in mirrored
            await other.start()  # now it answers for its calls
            for _ in range(100):
                whole = (await c.get("/telephony/calls/CA-elsewhere", headers=AUTH)).json()
                if "partial" not in whole:
                    break
                await asyncio.sleep(0.05)  # its listener subscribes
            assert whole.keys() == session.summary().keys() and whole["call_id"] == "CA-elsewhere"
    finally:
        other.unregister("CA-elsewhere")
        await other.aclose()
        await redis.aclose()
        await services.aclose()
