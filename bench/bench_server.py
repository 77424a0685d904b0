"""The benchmark server: the REAL app (`create_app`) under uvicorn, with scripted engines of fixed
delays, in its own process so its CPU seconds and resident memory can be measured from outside.

    python -m bench.bench_server --port 8765 --stt-ms 150 --llm-first-token-ms 200 ...
    sutradhar bench server --port 8765            (the same, through the suite's CLI)

Delays come from the command line or BENCH_* environment variables (see `Delays.to_env`).
uvloop is used when installed, as `sutradhar serve` does. Logging defaults to WARNING (the
per-turn INFO lines of a production server are a few per turn, not per frame).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Request

from sutradhar.testing.ports import free_port

_REPO = Path(__file__).resolve().parents[1]


def build_app(delays: Any, log_level: str = "WARNING", max_calls: int = 10_000,
              operations: bool = True) -> Any:
    import tempfile

    from bench.scenario import scripted_providers
    from sutradhar.config import load_settings
    from sutradhar.engines.registry import EngineSet
    from sutradhar.server.app import create_app

    # A throwaway data directory: the call store (operations) writes every call, as in production.
    data_dir = os.environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp(prefix="sutradhar-bench-")
    if os.environ.get("BENCH_ENGINES") == "default":
        # The configured engines (the offline local ones by default), built by the server itself.
        extra = {"models_dir": os.environ["BENCH_MODELS_DIR"]} if os.environ.get("BENCH_MODELS_DIR") else {}
        settings = load_settings(log_level=log_level, data_dir=data_dir, _env_file=None, **extra)
        engines = None
    else:
        settings = load_settings(stt=["scripted"], llm=["scripted"], tts=["scripted"], log_level=log_level,
                                 max_concurrent_calls=max_calls, retry_attempts=1, data_dir=data_dir,
                                 _env_file=None)
        stt, llm, tts = scripted_providers(delays)
        engines = EngineSet([stt], [llm], [tts])
    app = create_app(settings, engines=engines, records=operations)
    quality = os.environ.get("BENCH_RESAMPLER_QUALITY")
    if quality:
        _patch_resampler(quality)
    app.add_api_route("/bench/stats", _probe.stats, methods=["GET"])
    app.add_api_route("/bench/item", _oracle_item, methods=["POST"])
    app.add_api_route("/bench/reset", _probe.reset, methods=["POST"])
    app.add_api_route("/bench/memory", _memory.read, methods=["GET"])
    app.add_api_route("/bench/memory/trace", _memory.trace, methods=["POST"])
    return app, settings


async def _oracle_item(request: Request) -> dict:
    """bench turns: what the next caller says, for the oracle STT (prefix seconds -> text)."""
    from bench.engines import OracleSTT

    OracleSTT.prefixes = [(float(s), str(t)) for s, t in (await request.json())["prefixes"]]
    return {"ok": True}


class Probe:
    """Bench-only instruments inside the server process: event-loop lag (a 10 ms ticker's lateness)
    and garbage-collector pauses, read by the load benchmark at GET /bench/stats."""

    def __init__(self) -> None:
        from bench.common import LagTicker

        self.ticker = LagTicker()
        self.gc: list[tuple[int, float]] = []
        self._gc_start = 0.0

    async def start(self) -> None:
        import gc

        gc.callbacks.append(self._on_gc)
        self.ticker.start()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif len(self.gc) < 200_000:
            self.gc.append((info.get("generation", -1), (time.perf_counter() - self._gc_start) * 1000))

    async def reset(self) -> dict[str, str]:
        """Start measuring (the load benchmark calls this once the server is up and idle)."""
        if not self.ticker.running:
            await self.start()
            if os.environ.get("BENCH_GC_FREEZE") == "1":
                # The fix under test: after start-up and warm-up, move every object that exists now
                # (modules, FastAPI, models) out of the collector's reach, so a full collection
                # during calls only walks what the calls allocated.
                import gc

                gc.collect()
                gc.freeze()
        self.ticker.lags.clear()
        self.gc.clear()
        return {"status": "reset"}

    async def stats(self) -> dict[str, Any]:
        from bench.common import summarize

        by_gen: dict[str, Any] = {}
        for gen in (0, 1, 2):
            pauses = [ms for g, ms in self.gc if g == gen]
            by_gen[f"gen{gen}"] = {"count": len(pauses), "total_ms": round(sum(pauses), 1),
                                   "max_ms": round(max(pauses), 2) if pauses else None}
        lags = self.ticker.lags
        return {"loop_lag_ms": summarize(lags), "loop_lag_over_20ms": sum(1 for x in lags if x > 20),
                "gc": by_gen}


_probe = Probe()


class MemoryProbe:
    """bench memory: this process's resident memory after a full collection, what is still alive
    of the calls (sessions, tasks), and after a traced round the allocations grown since it began."""

    def __init__(self) -> None:
        self._baseline: Any = None

    async def trace(self) -> dict[str, str]:
        """Start tracemalloc now and keep this moment as the baseline the growth is measured from."""
        import gc
        import tracemalloc

        if not tracemalloc.is_tracing():
            tracemalloc.start(8)
        gc.collect()
        self._baseline = tracemalloc.take_snapshot()
        return {"status": "tracing"}

    async def read(self, request: Request, top: int = 15) -> dict[str, Any]:
        import asyncio
        import gc
        import tracemalloc

        import psutil

        from sutradhar.telephony.session import CallSession

        gc.collect()
        out: dict[str, Any] = {}
        if top and self._baseline is not None and tracemalloc.is_tracing():
            noise = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))
            now = tracemalloc.take_snapshot().filter_traces(noise)
            diff = now.compare_to(self._baseline.filter_traces(noise), "traceback")
            out["traced_growth_kb"] = round(sum(d.size_diff for d in diff) / 1024, 1)
            out["top_growth"] = [
                {"kb": round(d.size_diff / 1024, 1), "count": d.count_diff,
                 "where": " <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in list(d.traceback)[-3:][::-1])}
                for d in diff[:top] if d.size_diff > 0]
            # One traced round: stop, so RSS and pymalloc's statistics (hidden while tracemalloc
            # wraps the allocator) read as without it.
            tracemalloc.stop()
            self._baseline = None
        out.update({
            "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 2),
            "tasks": len(asyncio.all_tasks()),
            "live_calls": len(request.app.state.services.calls),
            "sessions_alive": sum(1 for o in gc.get_objects() if isinstance(o, CallSession)),
            "threads": threading.active_count(),
            "python_blocks": sys.getallocatedblocks(),
            "pymalloc_arenas": _pymalloc_arenas(),
            **_mallinfo(),
        })
        return out


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo() -> dict[str, float]:
    """glibc's view: bytes handed out by malloc, free inside its heaps (pages malloc_trim gave
    back still count as free), and in its own mmaps."""
    global _libc

    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.mallinfo2.restype = _MallInfo2
        info = _libc.mallinfo2()
    except (OSError, AttributeError):  # not glibc (or older than 2.33)
        return {}
    return {"malloc_in_use_mb": round(info.uordblks / 2**20, 2), "malloc_free_mb": round(info.fordblks / 2**20, 2),
            "malloc_mmap_mb": round(info.hblkhd / 2**20, 2)}


_libc: Any = None


def _pymalloc_arenas() -> int | None:
    """pymalloc's 1 MiB arenas in use: one live block keeps a whole arena resident."""
    import re
    import tempfile

    with tempfile.TemporaryFile("w+") as text:
        saved = os.dup(2)  # _debugmallocstats writes to the C stderr
        os.dup2(text.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        text.seek(0)
        found = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text.read())
    return int(found.group(1).replace(",", "")) if found else None


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


_memory = MemoryProbe()


def _patch_resampler(quality: str) -> None:
    """Compare outbound resampler qualities: the session's TTS -> wire resampler at another soxr
    quality (the server uses LQ; "HQ" holds back ~96 ms of a stream's first chunk, "QQ" ~0 ms)."""
    from sutradhar.telephony import session

    session.OUTBOUND_RESAMPLER_QUALITY = quality


def serve(port: int, log_level: str, operations: bool = True) -> None:
    import uvicorn
    from loguru import logger

    from bench.scenario import Delays

    logger.remove()
    logger.add(sys.stderr, level=log_level.upper())
    app, settings = build_app(Delays.from_env(), log_level, operations=operations)
    loop = "auto"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        pass
    uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, log_level="warning", access_log=False,
                ws_max_size=settings.max_message_bytes, lifespan="on", log_config=None)


class ServerProcess:
    """Start the benchmark server as a subprocess and wait until /health answers."""

    def __init__(self, delays: Any, port: int | None = None, log_level: str = "WARNING",
                 src: str | None = None, log_path: str | None = None, operations: bool = True,
                 gc_freeze: bool = False, engines: str = "scripted", models_dir: str | None = None,
                 resampler_quality: str | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra = env or {}
        env = dict(os.environ)
        env.update(delays.to_env())
        env.update(extra)
        src_dir = src or str(_REPO / "src")
        env["BENCH_SRC"] = src_dir
        if gc_freeze:
            env["BENCH_GC_FREEZE"] = "1"
        if resampler_quality:
            env["BENCH_RESAMPLER_QUALITY"] = resampler_quality
        if engines == "default":
            env["BENCH_ENGINES"] = "default"
            if models_dir:
                env["BENCH_MODELS_DIR"] = models_dir
        env["PYTHONPATH"] = os.pathsep.join([src_dir, str(_REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self._log = open(log_path or os.devnull, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_server", "--port", str(self.port), "--log-level", log_level,
             *([] if operations else ["--no-operations"])],
            cwd=str(_REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"benchmark server exited with code {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"benchmark server not ready within {timeout_s}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    src = os.environ.get("BENCH_SRC") or str(_REPO / "src")
    sys.path[:0] = [src, str(_REPO)]
    from bench.scenario import Delays

    p = argparse.ArgumentParser(prog="bench_server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--no-operations", action="store_true",
                   help="skip operations.start (call store, Prometheus, health monitor)")
    Delays.add_arguments(p)
    args = p.parse_args(argv)
    defaults = Delays.from_env()
    given = Delays.from_args(args)
    # Command-line values win over BENCH_* variables when they differ from the built-in defaults.
    for key, value in given.as_dict().items():
        if value != getattr(Delays(), key):
            setattr(defaults, key, value)
    os.environ.update(defaults.to_env())
    print(f"bench server on http://127.0.0.1:{args.port} delays={defaults.as_dict()}", file=sys.stderr)
    serve(args.port, args.log_level, operations=not args.no_operations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
