"""Two real worker processes behind one redis-server and one database share what they must:
the IVR language of a call, the live-call registry, breaker state and call records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import free_port, start_redis, wait_for_port

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
SRC = str(HERE.parents[1] / "src")
TOKEN = "multi-worker-token"


def start_worker(port: int, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "--factory",
         "worker_app:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
         "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


@pytest.fixture
def cluster(tmp_path):
    redis, redis_port = start_redis()
    env = {**os.environ, "PYTHONPATH": SRC, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", "ADMIN_TOKEN": TOKEN,
           "STT": "scripted", "LLM": "scripted", "TTS": "scripted", "HEALTH_INTERVAL_S": "0.5",
           "BREAKER_RESET_S": "300", "BREAKER_FAILURE_THRESHOLD": "2"}
    ports = [free_port(), free_port()]
    workers = []
    try:
        workers.append(start_worker(ports[0], env, tmp_path / "worker-a.log"))
        wait_for_port(ports[0], workers[0], 60)  # the first worker migrates the database
        workers.append(start_worker(ports[1], env, tmp_path / "worker-b.log"))
        wait_for_port(ports[1], workers[1], 60)
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.terminate()
        redis.wait(10)


def eventually(check, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def test_two_workers_share_ivr_language_live_calls_breakers_and_records(cluster):
    a, b = cluster
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(timeout=10) as http:
        for worker in (a, b):
            health = eventually(lambda w=worker: http.get(f"{w}/health"))
            assert health.status_code == 200, health.text
            assert health.json()["redis"]["ok"] is True
        assert eventually(lambda: http.get(f"{a}/health").json()["worker"]) != \
            http.get(f"{b}/health").json()["worker"]

        # the IVR webhook reaches worker a, the media stream worker b
        http.put(f"{a}/test/ivr/CA-ivr/te-IN").raise_for_status()
        assert http.get(f"{b}/test/ivr/CA-ivr").json()["language"] == "te-IN"

        # a call on worker a is counted by worker b
        http.post(f"{a}/test/calls/CA-live").raise_for_status()
        status_b = eventually(lambda: (s := http.get(f"{b}/status", headers=auth).json())
                              ["cluster_active_calls"] == 1 and s)
        assert status_b["active_calls"] == 0
        assert [c["call_id"] for c in status_b["cluster_calls"]] == ["CA-live"]
        # both workers' heartbeats reach Redis
        eventually(lambda: len(http.get(f"{b}/status", headers=auth).json()["cluster_workers"]) == 2)
        # what worker b sees of a's call is what a's CallSession is: carrier, language, state
        seen = status_b["cluster_calls"][0]
        assert (seen["transport"], seen["language"], seen["state"]) == ("twilio", "en-IN", "listening")
        assert http.get(f"{a}/status", headers=auth).json()["calls"][0]["turn_count"] == 1
        # the live call's summary: whole on either worker (the other asks its own through Redis)
        own = http.get(f"{a}/telephony/calls/CA-live", headers=auth)
        assert own.status_code == 200 and "partial" not in own.json()
        # (a loaded machine may keep worker a past the 0.5 s wait: then b answers with the mirror)
        other = eventually(lambda: (r := http.get(f"{b}/telephony/calls/CA-live", headers=auth))
                           .status_code == 200 and "partial" not in r.json() and r)
        assert other.json()["call_id"] == "CA-live"
        assert other.json().keys() == own.json().keys()
        assert other.json()["context"] == own.json()["context"] and len(own.json()["context"]) >= 2  # the turn
        assert http.get(f"{b}/telephony/calls/CA-nobody", headers=auth).status_code == 404

        # its record, written by worker a, is read through worker b
        http.delete(f"{a}/test/calls/CA-live").raise_for_status()
        # (the record exists from the call's start: wait for its end to be written, not for a 200)
        call = eventually(lambda: (r := http.get(f"{b}/calls/CA-live", headers=auth)).status_code == 200
                          and r.json()["status"] != "active" and r.json())
        assert call["status"] == "completed" and call["turn_count"] == 1
        assert eventually(lambda: http.get(f"{b}/status", headers=auth).json()
                          ["cluster_active_calls"] == 0)
        assert http.get(f"{b}/telephony/calls/CA-live", headers=auth).status_code == 404

        # worker a finds the STT provider down; worker b stops using it too
        assert http.post(f"{a}/test/stt-down").json()["breaker"] == "open"

        def b_sees_open():
            body = http.get(f"{b}/health")
            stt = [p for p in body.json()["providers"] if p["stage"] == "stt"][0]
            return body if stt["breaker"] == "open" else None

        health_b = eventually(b_sees_open)
        assert health_b.status_code == 503
        assert "no usable stt provider" in health_b.json()["reasons"]
        metrics_b = http.get(f"{b}/metrics").text
        assert 'sutradhar_breaker_state{provider="scripted-stt",stage="stt"} 2.0' in metrics_b


def start_serve(port: int, env: dict, log: Path) -> subprocess.Popen:
    """`sutradhar serve`, exactly as an operator runs it."""
    return subprocess.Popen([sys.executable, "-m", "sutradhar.cli.main", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def test_ivr_webhook_on_one_server_and_media_stream_on_another_share_the_language(tmp_path):
    import asyncio

    from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
    from tests.support.audio import speech_pcm

    redis, redis_port = start_redis()
    env = {**os.environ, "PYTHONPATH": SRC, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", "ADMIN_TOKEN": TOKEN,
           "STT": "scripted", "LLM": "scripted", "TTS": "scripted", "LOG_LEVEL": "WARNING", "WORKERS": "1",
           "INBOUND_MAX_SPEED": "0"}  # the simulator below streams at 2x real time
    ports = [free_port(), free_port()]
    servers = []
    try:
        for n, port in enumerate(ports):
            servers.append(start_serve(port, {**env, "PUBLIC_URL": f"http://127.0.0.1:{port}"},
                                       tmp_path / f"serve-{n}.log"))
            wait_for_port(port, servers[-1], 60)
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        call_sid = "CA" + "5" * 32
        form = {"CallSid": call_sid, "AccountSid": "ACtest", "From": "+910000000001", "To": "+910000000002"}
        with httpx.Client(timeout=10) as http:
            assert "<Gather" in http.post(f"{a}/twilio/voice", data=form).text
            twiml = http.post(f"{a}/twilio/language?attempt=1", data={**form, "Digits": "2"}).text
            assert 'value="hi-IN"' in twiml  # digit 2 is Hindi in the default menu order
        # The stream lands on the other server, without the <Parameter> (as from a static TwiML app):
        # only the shared Redis map can tell it the caller chose Hindi.
        result = asyncio.run(simulate(SimConfig(
            b, [CallerTurn(speech_pcm("hello there"), 8000)], call_sid=call_sid, speed=2.0, timeout_s=30,
            admin_token=TOKEN)))
        assert result.summary["language"] == "hi-IN"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(timeout=10) as http:
            record = eventually(lambda: (r := http.get(f"{a}/calls/{call_sid}", headers=auth)).status_code
                                == 200 and r.json())
        assert record["language"] == "hi-IN" and record["transport"] == "twilio"
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        redis.terminate()
        redis.wait(10)
