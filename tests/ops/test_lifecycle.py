"""The server process as an operator runs it, with real signals: SIGTERM drains live calls politely;
kill -9 loses no completed turn, and the next worker closes the dead one's calls as it found them.

Each test runs `tests.support.scripted_process` (the real runner and app on scripted engines) and
real simulated Twilio callers over loopback, and reads the SQLite call store the server wrote.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from sutradhar.testing.simulator import CallerTurn, CallResult, SimConfig, simulate
from sutradhar.testing.wires import TwilioWire
from sutradhar.text.languages import LANGUAGES
from tests.support.audio import speech_pcm, with_silence
from tests.support.server import free_port

from .conftest import wait_for_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LANGS = ("en-IN", "hi-IN", "te-IN", "gu-IN", "en-IN")
LONG_REPLY = ("Let me explain our plans. The basic plan covers calls. The standard plan adds data. "
              "The premium plan adds everything else. Which one would you like?")


def start_server(data_dir: Path, port: int, log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PORT": str(port),
               "HOST": "127.0.0.1", "DATA_DIR": str(data_dir), "DATABASE_URL": "",
               "LOG_LEVEL": "INFO", "SCRIPTED_REPLY": LONG_REPLY, "SCRIPTED_TTS_MS_PER_CHAR": "40",
               "WORKER_HEARTBEAT_S": "0.3", "WORKER_DEAD_AFTER_S": "1.5", "HEALTH_INTERVAL_S": "1",
               **env}
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.scripted_process"], cwd=ROOT,
                            env=environ, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    wait_for_port(port, proc, 60)
    return proc


def rows(data_dir: Path, query: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "sutradhar.db", timeout=10) as db:
        db.row_factory = sqlite3.Row
        return db.execute(query, args).fetchall()


def eventually(check: Any, timeout_s: float = 15.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except sqlite3.OperationalError:  # the server has not created the table yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


class Callers:
    """Simulated Twilio callers on an event loop of their own (the test thread polls and signals)."""

    def __init__(self, base_url: str, configs: list[SimConfig]) -> None:
        self.results: list[CallResult | BaseException] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(configs)), daemon=True)
        self._thread.start()

    async def _run(self, configs: list[SimConfig]) -> None:
        self.results = await asyncio.gather(*(simulate(c) for c in configs), return_exceptions=True)

    def join(self, timeout_s: float) -> list[CallResult]:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the simulated callers did not finish"
        for result in self.results:
            if isinstance(result, BaseException):
                raise result
        return self.results  # type: ignore[return-value]


def caller(base_url: str, sid: str, language: str, turns: int, **overrides: Any) -> SimConfig:
    speech = with_silence(speech_pcm("hello there, I have a question"), 8000, 200, 200)
    options: dict[str, Any] = dict(speed=1.0, gap_s=0.3, tail_s=0.3, hang_up=False, timeout_s=40,
                                   call_sid=sid, language=language, reply_wait_s=20)
    options.update(overrides)
    return SimConfig(base_url, [CallerTurn(speech, 8000) for _ in range(turns)], **options)


def live_calls(base: str) -> int:
    return httpx.get(f"{base}/health", timeout=5).json()["active_calls"]


async def media_close_code(base_url: str) -> int | None:
    """A new caller's media stream opened on this worker: how the server closes it."""
    wire = TwilioWire(base_url, "CAlate", "MZlate")
    async with websockets.connect(wire.url()) as ws:
        for message in wire.opening({"call_id": "CAlate"}):
            await ws.send(message)
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), 5)
        return ws.close_code


def test_sigterm_drains_live_calls_politely_in_their_languages(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path, port, tmp_path / "server.log", DRAIN_TIMEOUT_S="2.5",
                        DRAIN_GOODBYE_S="15")
    try:
        configs = [caller(base, f"CAdrain{i}", lang, turns=6) for i, lang in enumerate(LANGS)]
        # One caller finishes by themselves during the drain: their call is theirs to end.
        configs.append(caller(base, "CAshort", "en-IN", turns=1, hang_up=True, timeout_s=3.5))
        callers = Callers(base, configs)
        eventually(lambda: live_calls(base) == 6)
        # Every call mid-conversation: past its greeting, its first answer stored and playing.
        eventually(lambda: len(rows(tmp_path, "SELECT DISTINCT call_id FROM turns WHERE call_id LIKE "
                                              "'CAdrain%'")) == 5, timeout_s=20)
        proc.send_signal(signal.SIGTERM)
        health = eventually(lambda: (r := httpx.get(f"{base}/health", timeout=5)).status_code == 503 and r)
        assert health.json()["status"] == "draining" and health.json()["active_calls"] >= 5
        busy = httpx.post(f"{base}/twilio/voice", data={"CallSid": "CAnew"}, timeout=5)
        assert busy.status_code == 200 and "<Hangup" in busy.text and "<Gather" not in busy.text
        assert asyncio.run(media_close_code(base)) == 1012
        results = callers.join(40)
        assert proc.wait(30) == 0  # the drain ended every call, then the server stopped by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "server.log").read_text()
    assert "draining: 6 live calls" in log or "draining: 5 live calls" in log, log[-3000:]
    drained = [r for r in results if r.call_id.startswith("CAdrain")]
    assert all(r.closed_by_server for r in drained)
    calls = {row["id"]: row for row in rows(tmp_path, "SELECT * FROM calls")}
    assert "CAlate" not in calls and "CAnew" not in calls  # refused calls leave no record
    assert calls["CAshort"]["end_reason"] == "caller_hangup"
    for i, lang in enumerate(LANGS):
        call = calls[f"CAdrain{i}"]
        assert (call["status"], call["end_reason"]) == ("completed", "drained"), dict(call)
        # The answer that was playing when the drain ended the call keeps only what was heard.
        (turn,) = rows(tmp_path, "SELECT * FROM turns WHERE call_id = ?", call["id"])
        assert turn["interrupted"] and not turn["playing"] and turn["reply"].startswith(turn["heard"])
        # The last thing the caller heard is the goodbye, in their language.
        context = json.loads(call["summary"])["context"]
        assert context[-1] == {"role": "assistant", "content": LANGUAGES[lang].drained, "interrupted": False}
    assert "did not finish within" not in log  # every goodbye played to its end before the hang-up
    (worker,) = rows(tmp_path, "SELECT * FROM workers")
    assert worker["status"] == "stopped" and worker["stopped_at"]


def test_kill_9_loses_no_turn_and_the_next_worker_closes_the_calls_with_what_was_heard(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path, port, tmp_path / "first.log")
    try:
        callers = Callers(base, [caller(base, f"CAkill{i}", lang, turns=1) for i, lang in enumerate(LANGS)])
        eventually(lambda: live_calls(base) == 5)

        def replying() -> list[sqlite3.Row] | None:
            # Each call's answer is stored while it still plays, and the callers have heard part of it.
            playing = rows(tmp_path, "SELECT * FROM turns WHERE playing = 1 AND text != ''")
            heard = [r for r in playing if r["heard"]]
            return playing if len(playing) == 5 and len(heard) == 5 else None

        eventually(replying, timeout_s=20, step=0.05)
        time.sleep(0.2)
        before = {(r["call_id"], r["seq"]): dict(r) for r in rows(tmp_path, "SELECT * FROM turns")}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        callers.join(40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert all(row["status"] == "active" for row in rows(tmp_path, "SELECT * FROM calls"))

    second = start_server(tmp_path, free_port(), tmp_path / "second.log")
    try:
        closed = eventually(lambda: (r := rows(tmp_path, "SELECT * FROM calls WHERE status != 'active'"))
                            and len(r) == 5 and r, timeout_s=15)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    lost_worker = [w for w in rows(tmp_path, "SELECT * FROM workers") if w["status"] == "lost"]
    assert len(lost_worker) == 1
    for call in closed:
        assert (call["status"], call["end_reason"]) == ("failed", "server_lost")
        # Ended when the dead worker last beat, or at its last stored turn if that came later.
        last_turn = rows(tmp_path, "SELECT max(created_at) FROM turns WHERE call_id = ?", call["id"])[0][0]
        assert call["ended_at"] == max(lost_worker[0]["stopped_at"], last_turn)
    after = {(r["call_id"], r["seq"]): dict(r) for r in rows(tmp_path, "SELECT * FROM turns")}
    assert before.keys() <= after.keys()  # every turn stored before the crash survived it
    for key, old in before.items():
        new = after[key]
        if old["playing"]:
            # Cut off mid-reply: the record keeps what the caller's marks confirmed, no more.
            assert new["interrupted"] and not new["playing"]
            assert new["heard"] and new["heard"] != new["reply"] and new["reply"].startswith(new["heard"])
            assert new["heard"].startswith(old["heard"])
