"""Memory that comes back: the benchmark server's resident memory at idle, under N idle media
sockets and under N calls, and after they end.

    sutradhar bench memory --sockets 300 --calls 100

The server is the real app in a subprocess (`bench/bench_server.py`, scripted engines), so the
figures are the server's alone, not the callers'. Phases, each read from GET /bench/memory (RSS
after a full collection, tasks, live calls, CallSession objects still alive):

1. warm-up calls (first-call imports, codec tables, the store's connection), then idle;
2. N media sockets opened and left without a `start` (what a slow or hostile carrier leaves),
   then closed;
3. N concurrent short calls (greeting, one answered turn, hang-up), then idle;
4. tracemalloc started in the server, one more round of sockets and calls, and the allocations
   still alive after it ranked by growth (what a leak would show, line by line).

"after" is read once the server has nothing left of the round (no live call, tasks back to
idle) and `--settle-s` later, the time an idle server gets to give memory back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.bench_server import ServerProcess
from bench.scenario import Delays

Log = Callable[[str], None]


def _read(url: str, top: int = 15) -> dict[str, Any]:
    return httpx.get(f"{url}/bench/memory", params={"top": top}, timeout=60).json()


async def _idle_sockets(ws_url: str, n: int, hold_s: float, url: str) -> tuple[dict[str, Any], int]:
    """Open n media sockets without a start, read the server while they are open, close them."""
    import websockets

    sockets = await asyncio.gather(*(websockets.connect(f"{ws_url}/twilio/media", open_timeout=30)
                                     for _ in range(n)), return_exceptions=True)
    opened = [s for s in sockets if not isinstance(s, BaseException)]
    await asyncio.sleep(hold_s)  # the server's receive loops are all parked on these sockets now
    during = await asyncio.to_thread(_read, url, 0)
    await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    return during, len(opened)


async def _calls(ws_url: str, n: int, url: str) -> tuple[dict[str, Any], int]:
    """n concurrent short calls; the server is read at the peak (all n live at once)."""
    from tests.e2e.load import short_call

    peak: dict[str, Any] = {}
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            reading = await asyncio.to_thread(_read, url, 0)
            if reading["live_calls"] >= peak.get("live_calls", 0):
                peak.update(reading)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    outcomes = await asyncio.gather(*(short_call(ws_url, turns=1, reply_timeout_s=30) for _ in range(n)))
    done.set()
    await sampler
    return peak, sum(1 for o in outcomes if o.ok)


def _settled(url: str, idle_tasks: int, settle_s: float, timeout_s: float = 60) -> dict[str, Any]:
    """The server's reading once nothing of the round is left, `settle_s` after that."""
    deadline = time.monotonic() + timeout_s
    reading = _read(url, 0)
    while (reading["live_calls"] or reading["tasks"] > idle_tasks) and time.monotonic() < deadline:
        time.sleep(0.2)
        reading = _read(url, 0)
    time.sleep(settle_s)
    return _read(url, 0)


def run(sockets: int, calls: int, settle_s: float, top: int, trim_interval_s: float | None = None,
        server_env: dict[str, str] | None = None, log: Log = print) -> dict[str, Any]:
    env = dict(server_env or {})
    if trim_interval_s is not None:
        env["MEMORY_TRIM_INTERVAL_S"] = str(trim_interval_s)
    with ServerProcess(Delays(), env=env) as server:
        url, ws_url = server.url, server.url.replace("http://", "ws://")
        asyncio.run(_calls(ws_url, 4, url))
        idle = _settled(url, 10**6, settle_s)
        log(f"idle after warm-up: {idle['rss_mb']} MB, {idle['tasks']} tasks")
        phases: list[dict[str, Any]] = []

        def phase(name: str, n: int, during: dict[str, Any], ok: int) -> None:
            after = _settled(url, idle["tasks"], settle_s)
            phases.append({"phase": name, "n": n, "ok": ok, "rss_idle_mb": idle["rss_mb"],
                           "rss_during_mb": during.get("rss_mb"), "rss_after_mb": after["rss_mb"],
                           "left_after_mb": round(after["rss_mb"] - idle["rss_mb"], 2),
                           "tasks_after": after["tasks"], "live_calls_after": after["live_calls"],
                           "sessions_alive_after": after["sessions_alive"],
                           "pymalloc_arenas": [idle.get("pymalloc_arenas"), after.get("pymalloc_arenas")],
                           "malloc_free_mb_after": after.get("malloc_free_mb")})
            log(f"{name} x{n}: during {during.get('rss_mb')} MB, after {after['rss_mb']} MB "
                f"({phases[-1]['left_after_mb']:+} MB over idle), sessions alive {after['sessions_alive']}")

        during, ok = asyncio.run(_idle_sockets(ws_url, sockets, 1.0, url))
        phase("idle sockets", sockets, during, ok)
        during, ok = asyncio.run(_calls(ws_url, calls, url))
        phase("calls", calls, during, ok)

        httpx.post(f"{url}/bench/memory/trace", timeout=60)
        asyncio.run(_idle_sockets(ws_url, sockets, 1.0, url))
        asyncio.run(_calls(ws_url, calls, url))
        _settled(url, idle["tasks"], settle_s)
        traced = _read(url, top)
    return {"sockets": sockets, "calls": calls, "settle_s": settle_s, "trim_interval_s": trim_interval_s,
            "server_env": env,
            "idle": idle, "phases": phases,
            "traced_round": {"growth_kb": traced.get("traced_growth_kb"), "top": traced.get("top_growth", []),
                             "sessions_alive": traced["sessions_alive"],
                             # a high-water mark is reused by the next round; a leak adds arenas again
                             "pymalloc_arenas_after": traced.get("pymalloc_arenas")}}


def table(result: dict[str, Any]) -> str:
    from bench.common import table as render

    rows = [[p["phase"], p["n"], p["ok"], p["rss_idle_mb"], p["rss_during_mb"], p["rss_after_mb"],
             f"{p['left_after_mb']:+.1f}", "{} -> {}".format(*p["pymalloc_arenas"]), p["sessions_alive_after"],
             p["tasks_after"]] for p in result["phases"]]
    text = render(rows, ["phase", "N", "ok", "RSS idle MB", "RSS during MB", "RSS after MB", "left over MB",
                         "pymalloc arenas", "sessions alive after", "server tasks after"])
    traced = result["traced_round"]
    lines = [f"  {g['kb']:>8.1f} KB {g['count']:>+6} blocks  {g['where']}" for g in traced["top"]]
    return (text + f"\n\ntracemalloc, one more round of {result['sockets']} sockets + {result['calls']} calls: "
            f"{traced['growth_kb']} KB still allocated after it, {traced['sessions_alive']} CallSessions alive, "
            f"pymalloc arenas {traced['pymalloc_arenas_after']}; top lines:\n" + "\n".join(lines))
