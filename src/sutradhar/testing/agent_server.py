"""The real server for agent tests: `sutradhar serve --agent FILE` as a child process on a free
loopback port, with a call store of its own in a temporary DATA_DIR and an admin token, so the
tests read each call's record from `GET /calls/{id}` like an operator would.

Everything else comes from the environment (and `.env`) as for `serve`, except what would make
the test server something other than a standalone box: Redis, an external database, real carrier
accounts and stream-token enforcement are switched off. Twilio's credentials are the test's own
and its REST API is a loopback stub (`CarrierStub`), so the simulator signs as Twilio and a call
the agent transfers (to TRANSFER_NUMBER, a test number unless set) ends as "transferred" in its
record, as on a real line. The turn budget is off unless
TURN_BUDGET_S is set: on a loaded CI box a slow transcription must not become an apology, since a
scenario tests what the agent does (`sutradhar bench` measures how fast).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from sutradhar.testing.ports import free_port

# Chains per `--engines` choice; "env" keeps whatever STT/LLM/TTS the environment names.
ENGINE_CHAINS: dict[str, dict[str, str]] = {
    "offline": {"STT": "local", "LLM": "local,responder", "TTS": "piper,espeak"},
    "scripted": {"STT": "scripted", "LLM": "responder", "TTS": "scripted"},
    "env": {},
}

# A test server stands alone: its own SQLite store, no shared state, no real carrier account.
STANDALONE = {"DATABASE_URL": "", "REDIS_URL": "", "WORKERS": "1", "STREAM_TOKENS": "off",
              "EXOTEL_API_KEY": "", "EXOTEL_API_TOKEN": "", "PLIVO_AUTH_ID": "", "PLIVO_AUTH_TOKEN": "",
              "RECORD_CALLS": "false"}
TEST_ACCOUNT_SID = "ACsutradhartest"
TEST_TRANSFER_NUMBER = "+910000000000"


class CarrierStub:
    """Twilio's call-update endpoint on a loopback port: every hang-up or transfer succeeds."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"sid": "stub", "status": "in-progress"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # quiet: the report is the output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="carrier-stub", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
        self.twilio_token = secrets.token_urlsafe(16)  # the simulator signs as Twilio with it
        self._carrier: CarrierStub | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="sutradhar-test-")
        self.log_path = Path(self._dir.name) / "server.log"
        self.overrides = {"TURN_BUDGET_S": os.environ.get("TURN_BUDGET_S", "0"), **STANDALONE,
                          "TRANSFER_NUMBER": os.environ.get("TRANSFER_NUMBER") or TEST_TRANSFER_NUMBER,
                          **ENGINE_CHAINS[engines], **(env or {}),
                          "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": self.twilio_token,
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
        self._carrier = CarrierStub()
        self.overrides["TWILIO_API_BASE"] = self._carrier.url
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
        if self._carrier is not None:
            self._carrier.close()
        self._dir.cleanup()
