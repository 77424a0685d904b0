"""`sutradhar serve --workers 2` as an operator runs it: two worker processes on one port, sharing
state through the private redis-server the supervisor starts, one /metrics for both, a dead
worker replaced, and SIGTERM draining both."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm, with_silence
from tests.support.server import free_port

from .conftest import wait_for_port
from .test_lifecycle import eventually

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def workers_seen(base: str, attempts: int = 60) -> set[str]:
    """Worker ids answering new connections (each request on a fresh connection)."""
    seen = set()
    for _ in range(attempts):
        with httpx.Client(timeout=5) as http:  # a new connection, a new source port
            try:
                seen.add(http.get(f"{base}/health").json()["worker"])
            except httpx.TransportError:  # queued on a worker that was just killed: reset
                continue
    return seen


def calls_total(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    match = re.search(r"^sutradhar_calls_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_workers_share_one_port_one_metrics_and_drain_on_sigterm(tmp_path):
    if not Path("/usr/bin/redis-server").exists() and not any(
            Path(p, "redis-server").exists() for p in os.environ.get("PATH", "").split(":")):
        pytest.skip("redis-server is not installed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}", "DATA_DIR": str(tmp_path), "DATABASE_URL": "",
           "REDIS_URL": "", "STT": "scripted", "LLM": "scripted", "TTS": "scripted", "LOG_LEVEL": "INFO",
           "WORKER_HEARTBEAT_S": "0.3", "WORKER_DEAD_AFTER_S": "1.5"}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "sutradhar.cli.main", "serve", "--workers", "2", "--port",
                             str(port)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))
    try:
        wait_for_port(port, proc, 60)
        both = eventually(lambda: len(s := workers_seen(base)) == 2 and s, timeout_s=30)
        started = psutil.Process(proc.pid).children(recursive=True)  # workers, redis-server

        # Both beat into the one private Redis: each sees the other.
        status = httpx.get(f"{base}/status", timeout=5).json()
        assert set(eventually(lambda: len(w := httpx.get(f"{base}/status", timeout=5).json()
                                          ["cluster_workers"]) == 2 and w)) == both
        assert "cluster_active_calls" in status

        # Calls land on either worker; /metrics on any of them counts them all.
        speech = with_silence(speech_pcm("hello there"), 8000, 200, 200)

        async def calls() -> None:
            await asyncio.gather(*(simulate(SimConfig(base, [CallerTurn(speech, 8000)], call_sid=f"CAw{i}",
                                                      timeout_s=20, tail_s=0.2)) for i in range(6)))

        asyncio.run(calls())
        for _ in range(6):
            assert calls_total(base) == 6

        # A worker killed outright is replaced, and the port keeps answering meanwhile.
        victim = int(sorted(both)[0].rsplit(":", 1)[1])
        os.kill(victim, signal.SIGKILL)
        replaced = eventually(lambda: len(s := workers_seen(base, 30)) == 2 and s != both and s, timeout_s=30)
        assert len(replaced & both) == 1

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # Nothing the supervisor started outlives it, even when it is the one killed outright.
    assert eventually(lambda: not any(p.is_running() and p.status() != "zombie" for p in started), 15)
    text = log.read_text()
    assert "died (exit code -9); starting a new one" in text
    assert text.count("drained in") == 2  # each worker drained itself
    assert not (tmp_path / "redis.sock").exists()  # the private redis-server went with them


def test_workers_and_the_private_redis_stop_when_the_supervisor_is_killed_outright(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}", "DATA_DIR": str(tmp_path), "DATABASE_URL": "",
           "REDIS_URL": "", "STT": "scripted", "LLM": "scripted", "TTS": "scripted", "LOG_LEVEL": "INFO"}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "sutradhar.cli.main", "serve", "--workers", "2", "--port",
                             str(port)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))
    started: list[psutil.Process] = []
    try:
        wait_for_port(port, proc, 60)
        eventually(lambda: len(workers_seen(f"http://127.0.0.1:{port}", 20)) == 2, timeout_s=30)
        started = psutil.Process(proc.pid).children(recursive=True)
        assert len(started) >= 3  # two workers and the redis-server (and multiprocessing's tracker)
        proc.kill()  # kill -9 the supervisor
        proc.wait(10)
        assert eventually(lambda: not any(p.is_running() and p.status() != "zombie" for p in started), 20)
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in started:  # whatever did not go by itself (a failed run must not leak them)
            if child.is_running():
                child.kill()
    assert "drained in" in log.read_text()  # the workers drained on the way out
