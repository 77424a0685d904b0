"""The real server for agent tests: `sutradhar serve --agent FILE` as a child process on a free
loopback port, with a call store of its own in a temporary DATA_DIR and an admin token, so the
tests read each call's record from `GET /calls/{id}` like an operator would.

Everything else comes from the environment (and `.env`) as for `serve`, except what would make
the test server something other than a standalone box: Redis, an external database, carrier
credentials and stream-token enforcement are switched off. The turn budget is off unless
TURN_BUDGET_S is set: on a loaded CI box a slow transcription must not become an apology, since a
scenario tests what the agent does (`sutradhar bench` measures how fast).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

# Chains per `--engines` choice; "env" keeps whatever STT/LLM/TTS the environment names.
ENGINE_CHAINS: dict[str, dict[str, str]] = {
    "offline": {"STT": "local", "LLM": "local,responder", "TTS": "piper,espeak"},
    "scripted": {"STT": "scripted", "LLM": "responder", "TTS": "scripted"},
    "env": {},
}

# A test server stands alone: its own SQLite store, no shared state, no carrier account.
STANDALONE = {"DATABASE_URL": "", "REDIS_URL": "", "WORKERS": "1", "STREAM_TOKENS": "off",
              "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "", "EXOTEL_API_KEY": "",
              "EXOTEL_API_TOKEN": "", "PLIVO_AUTH_ID": "", "PLIVO_AUTH_TOKEN": "", "RECORD_CALLS": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerFailed(RuntimeError):
    """The server did not become ready; the message ends with the tail of its log."""


class AgentServer:
    """`with AgentServer(agent) as server:` a ready server at `server.url`; stopped on exit."""

    def __init__(self, agent: Path, engines: str = "offline", *, start_timeout_s: float = 180.0,
                 env: dict[str, str] | None = None) -> None:
        if engines not in ENGINE_CHAINS:
            raise ValueError(f"unknown engines {engines!r} ({', '.join(ENGINE_CHAINS)})")
        self.agent, self.engines, self.start_timeout_s = agent, engines, start_timeout_s
        self.port = free_port()
        self.admin_token, self.browser_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self._dir = tempfile.TemporaryDirectory(prefix="sutradhar-test-")
        self.log_path = Path(self._dir.name) / "server.log"
        self.overrides = {"TURN_BUDGET_S": os.environ.get("TURN_BUDGET_S", "0"), **STANDALONE,
                          **ENGINE_CHAINS[engines], **(env or {}),
                          "DATA_DIR": self._dir.name, "ADMIN_TOKEN": self.admin_token,
                          "BROWSER_TOKEN": self.browser_token, "PUBLIC_URL": self.url,
                          "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def settings_overrides(self) -> dict[str, Any]:
        """The overrides as `load_settings` keywords (what the child process is told)."""
        return {key.lower(): value for key, value in self.overrides.items()}

    def __enter__(self) -> AgentServer:
        # The `sutradhar` entry point, run by this interpreter (the console script may not be on PATH).
        entry = "import sys; from sutradhar.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", entry, "serve", "--agent", str(self.agent),
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, env={**os.environ, **self.overrides},
                                             stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll /health until it answers 200: the child has loaded and warmed its engines."""
        assert self._process is not None
        deadline, last = time.monotonic() + self.start_timeout_s, "no answer"
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise ServerFailed(f"the server exited with {self._process.returncode}\n{self.log_tail()}")
                try:
                    response = client.get("/health")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.25)
        raise ServerFailed(f"the server was not ready within {self.start_timeout_s:.0f}s ({last})\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("  | " + line for line in text.splitlines()[-lines:])

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM drains; no call is live by now
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._dir.cleanup()
