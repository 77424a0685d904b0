"""The call store alone, for A/B runs of its cost: N calls' record events (start, turns, playout
progress, end) through one `CallStore` on a SQLite file, spread out as live calls make them, so
they share the writer's batched transactions as they do in a loaded server. Prints, per event
kind, the process CPU and the main thread's (the event loop's: what a call's audio waits behind)
in milliseconds per event.

    python -m bench.call_store [--calls 300] [--turns 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPREAD_S = 0.0002  # between two calls' events: 300 calls' turns over ~60 ms, a few batches


def _turn(k: int) -> dict[str, Any]:
    return {"turn_id": str(k), "text": "hello there how are you", "language": "en-IN",
            "reply": "I am fine, thank you. What can I do for you today?",
            "timings": {"stt_ms": 150.0, "llm_ttft_ms": 200.0, "tts_ttfb_ms": 100.0, "v2v_ms": 600.0,
                        "v2v_wire_ms": 640.0},
            "providers": {"stt": "openai", "llm": "openai", "tts": "openai"}, "errors": [], "tool_calls": []}


async def _run(calls: int, turns: int, directory: Path) -> dict[str, dict[str, float]]:
    from sutradhar.store.calls import CallStore

    store = CallStore(f"sqlite+aiosqlite:///{directory}/calls.db")
    await store.start()
    ids = [f"CA{i:032x}" for i in range(calls)]
    loop = asyncio.get_running_loop()
    results: dict[str, list[tuple[float, float]]] = {}

    async def phase(kind: str, event: Callable[[str], Any]) -> None:
        cpu, main = time.process_time(), time.thread_time()
        for call_id in ids:
            loop.create_task(event(call_id))
            await asyncio.sleep(SPREAD_S)
        await store.flush()
        results.setdefault(kind, []).append(((time.process_time() - cpu) * 1000 / calls,
                                             (time.thread_time() - main) * 1000 / calls))

    await phase("start", lambda c: store.call_started(c, {"transport": "twilio", "language": "en-IN"}))
    for k in range(turns):
        await phase("turn", lambda c, k=k: store.turn_completed(c, _turn(k)))
        await phase("heard", lambda c, k=k: store.turn_heard(c, str(k), "I am fine, thank you.", True))
    await phase("end", lambda c: store.call_ended(c, "caller_hangup", {"turns": turns, "language": "en-IN"}))
    await store.aclose()
    return {kind: {"cpu_ms_per_event": round(sum(p for p, _ in runs) / len(runs), 3),
                   "main_thread_ms_per_event": round(sum(m for _, m in runs) / len(runs), 3)}
            for kind, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    from bench.overhead import quiet_logs

    quiet_logs("WARNING")
    with tempfile.TemporaryDirectory() as directory:
        for kind, figures in asyncio.run(_run(args.calls, args.turns, Path(directory))).items():
            print(kind, figures)


if __name__ == "__main__":
    main()
