"""`sutradhar serve --workers N`: N full server processes on one port, so a machine's every core
takes calls (one Python process uses one core).

Each worker is the whole server (`runner.serve`) in a process of its own, listening on the same
port with SO_REUSEPORT: the kernel spreads new connections over them, and a call (one WebSocket)
stays on the worker that accepted it. What calls must share goes through Redis: REDIS_URL when
configured, else a private `redis-server` this supervisor starts on a Unix socket under DATA_DIR
(IVR language map, live-call registry, breakers). `/metrics` on any worker reports all of them
(prometheus-client multiprocess mode, files under DATA_DIR).

Signals: SIGTERM drains every worker (each finishes or politely ends its own calls) and then the
supervisor exits; SIGINT stops them at once. If the supervisor itself is killed outright, the
kernel sends each worker SIGTERM (they drain) and stops the private redis-server. A worker that dies is replaced; the replacement (or a
sibling) closes the dead worker's calls as `server_lost` (crash recovery in the call store).
Run under systemd with `KillMode=mixed`, so a stop signals this process and it signals the workers
once (the second SIGTERM a worker receives means "stop now").
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import FrameType
from typing import Any

from loguru import logger

from sutradhar.config import Settings, load_settings

log = logger.bind(stage="workers")
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)  # a worker that keeps dying is restarted more slowly


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket several processes can bind to the same port (the kernel balances connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send `sig` to this process when its parent dies: a supervisor killed outright
    (kill -9, OOM) must not leave workers holding the port, or a redis-server nobody stops. A
    worker gets SIGTERM, so it drains its calls like on any stop. No-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(overrides: dict[str, Any], index: int) -> None:
    """A worker process: the settings anew from the environment the supervisor prepared."""
    from sutradhar.ops.logs import setup_logging
    from sutradhar.server.runner import serve

    die_with_parent()
    if os.getppid() == 1:  # the supervisor died before the request above took effect
        return
    settings = load_settings(**overrides)
    setup_logging(settings)
    logger.bind(stage="workers").info("worker {} pid={} starting", index, os.getpid())
    serve(settings, sock=listening_socket(settings.host, settings.port))


class Supervisor:
    def __init__(self, settings: Settings, count: int, overrides: dict[str, Any]) -> None:
        self.settings = settings
        self.count = count
        self.overrides = overrides
        self.context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked loop state
        self.workers: list[multiprocessing.process.BaseProcess | None] = [None] * count
        self.restarts = [0] * count
        self.stopping: int | None = None  # the signal that is stopping us
        self.redis: subprocess.Popen | None = None
        self.metrics_dir = Path(settings.data_dir) / "prometheus"

    def run(self) -> int:
        self._prepare_environment()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            for index in range(self.count):
                self._spawn(index)
            log.info("{} workers serving http://{}:{} (pids {})", self.count, self.settings.host,
                     self.settings.port, ",".join(str(w.pid) for w in self.workers if w))
            self._watch()
        finally:
            self._stop_redis()
        return 0

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if self.stopping is None:
            self.stopping = sig
            log.info("{}: {} the workers", signal.Signals(sig).name,
                     "draining" if sig == signal.SIGTERM else "stopping")
        elif sig == signal.SIGTERM:
            log.warning("second SIGTERM: stopping the workers now")
        for worker in self.workers:
            if worker is not None and worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, sig)

    def _watch(self) -> None:
        while True:
            alive = False
            for index, worker in enumerate(self.workers):
                if worker is None:
                    continue
                if worker.is_alive():
                    alive = True
                    continue
                worker.join()
                self._mark_dead(worker.pid)
                if self.stopping is not None:
                    self.workers[index] = None
                    continue
                log.error("worker {} pid={} died (exit code {}); starting a new one", index, worker.pid,
                          worker.exitcode)
                time.sleep(RESTART_BACKOFF_S[min(self.restarts[index], len(RESTART_BACKOFF_S) - 1)])
                self.restarts[index] += 1
                self._spawn(index)
                alive = True
            if not alive and self.stopping is not None:
                log.info("every worker has stopped")
                return
            time.sleep(0.2)

    def _spawn(self, index: int) -> None:
        worker = self.context.Process(target=_worker_main, args=(self.overrides, index),
                                      name=f"sutradhar-worker-{index}")
        worker.start()
        self.workers[index] = worker

    def _mark_dead(self, pid: int | None) -> None:
        """A dead worker's live gauges must not count any more (prometheus multiprocess files)."""
        if pid is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(self.metrics_dir))

    # --- what the workers share ---

    def _prepare_environment(self) -> None:
        # Set before any worker imports prometheus_client (spawned workers inherit the environment).
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        if not self.settings.redis_url:
            url = self._start_redis()
            if url:
                os.environ["REDIS_URL"] = url
            else:
                log.warning("redis-server is not installed and REDIS_URL is not set: each worker keeps "
                            "its own IVR language map, live-call count and breakers")

    def _start_redis(self) -> str | None:
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        data = Path(self.settings.data_dir).resolve()
        path = data / "redis.sock"
        path.unlink(missing_ok=True)
        # Shared state is soft and short-lived (IVR choices, live calls, breakers): no persistence.
        self.redis = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while not path.exists():
            if self.redis.poll() is not None or time.monotonic() > deadline:
                log.error("the private redis-server did not start")
                self._stop_redis()
                return None
            time.sleep(0.05)
        log.info("workers share state through a private redis-server at {}", path)
        return f"unix://{path}"

    def _stop_redis(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(5)
            except subprocess.TimeoutExpired:
                self.redis.kill()
        self.redis = None


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
