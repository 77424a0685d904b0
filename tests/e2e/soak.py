"""Bounded soak test, a benchmark command (not part of the default suite):

    PYTHONPATH=src python -m tests.e2e.soak --calls 50 --minutes 5

Starts the real server in-process (scripted engines with realistic delays, so the numbers measure
Sutradhar and not a model), keeps `--calls` concurrent Twilio calls going for `--minutes`, each
caller speaking in real time (20 ms frames) and taking turns, and samples the process's memory and
the server loop's task count. At the end every call must have been answered every turn, the tasks
must be back to the idle baseline, and memory must be flat (within --max-growth-mb of the level
after the warm-up minute). Prints a JSON report; exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

MAX_CALLS, MAX_MINUTES = 500, 30


def _services(settings: Any) -> Any:
    from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
    from tests.e2e.harness import scripted_engines

    return scripted_engines(
        ScriptedSTT(script=("where is my order",), delay_s=0.15),
        ScriptedLLM(replies=("Your order is on its way. It should arrive tomorrow.",), first_token_delay_s=0.25,
                    token_delay_s=0.01),
        ScriptedTTS(sample_rate=8000, first_chunk_delay_s=0.1, ms_per_char=40, chunk_ms=200))


async def soak(calls: int, minutes: float, turns: int, sample_s: float, max_growth_mb: float) -> dict[str, Any]:
    from tests.e2e.harness import e2e_settings, free_port, live_server
    from tests.e2e.load import rss_mb, short_call

    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, log_level="WARNING",
                            max_concurrent_calls=calls + 10)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    outcomes: list[Any] = []
    samples: list[dict[str, float]] = []
    with live_server(settings, engines=_services) as server:
        started = time.monotonic()
        deadline = started + minutes * 60
        warmup_end = started + min(60.0, minutes * 60 / 3)

        async def caller_loop() -> None:
            while time.monotonic() < deadline:
                outcomes.append(await short_call(server.ws_url, turns=turns, pace_s=0.02, reply_timeout_s=20))

        def forget_scripted_calls() -> None:
            # The scripted engines log every request for test assertions; a soak does not assert on
            # them, and their growth (about 2 KB a call) would otherwise be counted as ours.
            for stage in ("stt", "llm", "tts"):
                for provider in server.services.router.providers(stage):
                    log = getattr(provider, "calls", None)
                    if isinstance(log, list):
                        log.clear()

        async def sampler() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(sample_s)
                forget_scripted_calls()
                samples.append({"t_s": round(time.monotonic() - started, 1), "rss_mb": round(rss_mb(), 1),
                                "server_tasks": len(server.tasks()), "live_calls": server.live_calls()})
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)

        workers = [asyncio.create_task(caller_loop()) for _ in range(calls)]
        await asyncio.sleep(0)
        await asyncio.gather(sampler(), *workers)
        left = server.wait_tasks_settled(10)
        live_after = server.live_calls()
        metrics = server.services.metrics.summary()
        end_rss = rss_mb()

    after_warmup = [s for s in samples if s["t_s"] >= warmup_end - started]
    base = after_warmup[0]["rss_mb"] if after_warmup else (samples[0]["rss_mb"] if samples else end_rss)
    failed = [o for o in outcomes if not o.ok]
    per_call_tasks = [s["server_tasks"] / s["live_calls"] for s in samples if s["live_calls"]]
    report = {
        "concurrent_calls": calls, "minutes": minutes, "turns_per_call": turns,
        "calls_completed": len(outcomes), "calls_failed": len(failed),
        "turns_answered": sum(o.answered for o in outcomes), "turns_asked": sum(o.turns for o in outcomes),
        "failures": [f"{o.call_id}: {o.error or f'{o.answered}/{o.turns} answered'}" for o in failed[:10]],
        "rss_mb": {"after_warmup": base, "max": max((s["rss_mb"] for s in samples), default=end_rss),
                   "end_idle": round(end_rss, 1), "growth_after_warmup": round(end_rss - base, 1)},
        "server_tasks": {"max": max((s["server_tasks"] for s in samples), default=0),
                         "per_live_call_median": (round(statistics.median(per_call_tasks), 2)
                                                  if per_call_tasks else None),
                         "left_after_calls": len(left)},
        "live_calls_after": live_after,
        "latency_ms": {k: metrics[k] for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms", "v2v_wire_ms")
                       if k in metrics},
        "samples": samples,
    }
    report["checks"] = {
        "no_call_lost": not failed and report["turns_answered"] == report["turns_asked"],
        "tasks_back_to_idle": not left and live_after == 0,
        "memory_flat": report["rss_mb"]["growth_after_warmup"] <= max_growth_mb,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.e2e.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=50, help=f"concurrent calls (<= {MAX_CALLS})")
    p.add_argument("--minutes", type=float, default=5.0, help=f"duration (<= {MAX_MINUTES})")
    p.add_argument("--turns", type=int, default=3, help="caller turns per call before it hangs up")
    p.add_argument("--sample-s", type=float, default=10.0, help="seconds between memory/task samples")
    p.add_argument("--max-growth-mb", type=float, default=30.0, help="allowed RSS growth after warm-up")
    p.add_argument("--json", default=None, help="also write the report to this file")
    args = p.parse_args(argv)
    if not (1 <= args.calls <= MAX_CALLS and 0 < args.minutes <= MAX_MINUTES):
        p.error(f"--calls must be 1..{MAX_CALLS} and --minutes 0..{MAX_MINUTES}")
    os.chdir(tempfile.mkdtemp(prefix="sutradhar-soak-"))  # the call store's SQLite lives here
    report = asyncio.run(soak(args.calls, args.minutes, args.turns, args.sample_s, args.max_growth_mb))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text)
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
