"""The load benchmark's `--providers http` stack: the provider process (bench/provider_server.py)
and the production server (`sutradhar serve --workers N`) with its real OpenAI-compatible engines
pointed at it, each in its own process tree so their CPU and memory are measured apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sutradhar.testing.ports import free_port

_REPO = Path(__file__).resolve().parents[1]


class ProcessTree:
    """CPU seconds and resident memory of a process and all its descendants (workers, redis).

    A descendant that exits keeps its last CPU reading, so a restarted worker is not forgotten."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self._cpu: dict[int, float] = {}

    def _members(self) -> list[Any]:
        import psutil

        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_s(self) -> float:
        import psutil

        for proc in self._members():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self._cpu[proc.pid] = times.user + times.system
        return sum(self._cpu.values())

    def rss(self) -> int:
        import psutil

        total = 0
        for proc in self._members():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def count(self) -> int:
        return len(self._members())


class _Process:
    url: str
    proc: subprocess.Popen

    def _start(self, argv: list[str], env: dict[str, str], log_path: str | None) -> None:
        self._log = open(log_path or os.devnull, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, cwd=str(_REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str, timeout_s: float, workers: int = 1) -> None:
        """Until `path` answers 2xx; with several workers, until `workers` distinct ones have (the
        JSON's `worker`: each binds the shared port when it is ready, and the kernel spreads new
        connections over the bound ones)."""
        import httpx

        deadline = time.monotonic() + timeout_s
        seen: set[Any] = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{type(self).__name__} exited with code {self.proc.returncode}")
            try:
                with httpx.Client(timeout=2.0) as client:  # a new connection: any worker may answer
                    response = client.get(self.url + path)
                if response.is_success:
                    seen.add(response.json().get("worker") if workers > 1 else None)
                    if len(seen) >= workers:
                        return
                    continue
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{type(self).__name__} not ready within {timeout_s}s ({len(seen)} of {workers} workers)")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    src_dir = src or str(_REPO / "src")
    env["BENCH_SRC"] = src_dir
    env["PYTHONPATH"] = os.pathsep.join([src_dir, str(_REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class ProviderProcess(_Process):
    """bench/provider_server.py on a free loopback port."""

    def __init__(self, delays: Any, src: str | None = None, log_path: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        d = delays
        args = ["--stt-ms", d.stt_ms, "--llm-first-token-ms", d.llm_first_token_ms, "--llm-token-ms",
                d.llm_token_ms, "--tts-first-chunk-ms", d.tts_first_chunk_ms, "--tts-chunk-ms", d.tts_chunk_ms]
        self._start([sys.executable, "-m", "bench.provider_server", "--port", str(self.port),
                     *map(str, args)], _env(src), log_path)


class ProductionServer(_Process):
    """`sutradhar serve --workers N` as an operator runs it, configured only through the environment:
    STT, LLM and TTS are the `openai` engines at the provider process."""

    def __init__(self, provider_url: str, workers: int = 1, src: str | None = None,
                 log_path: str | None = None, settings: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.data_dir = tempfile.mkdtemp(prefix="sutradhar-bench-")
        env = _env(src)
        for key in list(env):
            # The operator's own configuration must not leak in (a .env is not read: cwd is the repo
            # root, where none is kept; an exported variable would be).
            if key.startswith(("OPENAI_", "SARVAM_", "TWILIO_", "REDIS_")) or key in ("STT", "LLM", "TTS"):
                del env[key]
        env.update({
            "STT": "openai", "LLM": "openai", "TTS": "openai",
            "OPENAI_BASE_URL": provider_url + "/v1", "OPENAI_API_KEY": "sk-bench",
            "DATA_DIR": self.data_dir, "LOG_LEVEL": "WARNING", "MAX_CONCURRENT_CALLS": "10000",
            "MAX_STREAMS_PER_SOURCE": "0",
        })
        env.update(settings or {})
        code = "import sys; from sutradhar.cli.main import main; raise SystemExit(main(sys.argv[1:]))"
        self._start([sys.executable, "-c", code, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", str(workers)], env, log_path)

    def wait_ready(self, path: str = "/health", timeout_s: float = 60.0, workers: int | None = None) -> None:
        super().wait_ready(path, timeout_s, workers or self.workers)
