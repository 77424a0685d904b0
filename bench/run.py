"""`sutradhar bench`: the benchmark suite's command line (also `python bench/run.py ...`).

Subcommands (each writes JSON to bench/results/, see bench/README.md):
  overhead  in-process orchestration overhead over many scripted turns (+ optional profile)
  load      real server + N concurrent simulated Twilio calls over loopback, swept over N
  local     one call's turns through the offline local engines: real latency per stage
  frames    micro-benchmark of the per-frame telephony work (decode, VAD, encode)
  server    run the benchmark server alone (scripted engines with fixed delays)
  plot      draw the PNG of a load sweep result
  all       overhead + frames + load (+ local when the engines are installed)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
for _p in (str(_REPO / "src"), str(_REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench.common import table, use_uvloop, write_result  # noqa: E402
from bench.scenario import Delays  # noqa: E402

QUICK_OVERHEAD_LEVELS = "1x25,20x4"
DEFAULT_OVERHEAD_LEVELS = "1x100,10x20,100x5"


def _levels(spec: str) -> list[tuple[int, int]]:
    """'1x100,10x20' -> [(1, 100), (10, 20)]: concurrency x turns per call."""
    out = []
    for part in spec.split(","):
        c, _, t = part.strip().partition("x")
        out.append((int(c), int(t or 10)))
    return out


# --- overhead ---

def cmd_overhead(args: argparse.Namespace) -> dict:
    from bench import overhead

    overhead.quiet_logs(args.log_level)
    d = Delays.from_args(args)
    spec = args.levels or (QUICK_OVERHEAD_LEVELS if args.quick else DEFAULT_OVERHEAD_LEVELS)
    levels = _levels(spec)
    loop = "uvloop" if (not args.no_uvloop and use_uvloop()) else "asyncio"
    if args.profile:
        out = Path(args.out or "bench/results")
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"overhead-profile-{args.profile}.txt"
        text = overhead.profile(d, levels, args.profile, str(path))
        print("\n".join(text.splitlines()[:60]))
        print(f"\nfull profile: {path}")
    result = asyncio.run(overhead.run_all(d, levels, baseline_turns=10 if args.quick else 40,
                                          full_turns=args.full_turns))
    result.update(loop=loop, log_level=args.log_level, quick=args.quick)
    path = write_result("overhead", result, args.out)
    print(overhead_table(result))
    print(f"\nresult: {path}")
    return result


def overhead_table(result: dict) -> str:
    rows = []
    for lv in result["levels"]:
        o, c = lv["overhead_ms"], lv["components_ms"]
        fa = lv["first_audio_before_llm_end"]
        rows.append([lv["concurrency"], lv["turns"], lv["v2v_ms"]["p50"], o["p50"], o["p95"], o["p99"],
                     c["stt_to_llm"]["p50"], c["token_to_tts"]["p50"], c["tts_to_consumer"]["p50"],
                     c["timer_slack"]["p50"], lv["cpu_ms_per_turn"], f"{fa['met']}/{fa['multi_sentence_turns']}"])
    head = ["calls", "turns", "v2v p50", "overhead p50", "p95", "p99", "stt→llm p50", "token→tts p50",
            "tts→consumer p50", "timer slack p50", "CPU ms/turn", "audio before LLM end"]
    base = result["timer_baseline_ms"]
    return (f"critical path {result['critical_path_ms']:.0f} ms; bare-sleep timer slack p50 "
            f"{base['p50']} ms p95 {base['p95']} ms\n" + table(rows, head))


# --- the parser ---

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sutradhar bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    o = sub.add_parser("overhead", help="in-process orchestration overhead (no server)",
                       description="Many AgentOrchestrator turns with scripted delays; overhead = "
                                   "first audio - utterance end - scripted critical path.")
    o.add_argument("--quick", action="store_true", help=f"levels {QUICK_OVERHEAD_LEVELS} (~20 s)")
    o.add_argument("--levels", default=None,
                   help=f"CONCURRENCYxTURNS,... (default {DEFAULT_OVERHEAD_LEVELS})")
    o.add_argument("--profile", choices=("cprofile", "pyinstrument"), default=None,
                   help="also run under a profiler and write bench/results/overhead-profile-*.txt")
    o.add_argument("--log-level", default="WARNING",
                   help="loguru level on stderr; INFO-DEVNULL formats INFO lines and discards them")
    o.add_argument("--full-turns", action="store_true",
                   help="consume every reply to the end (default: stop once the LLM is done and "
                        "first audio is out, as a barge-in would; keeps runs short)")
    o.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    o.add_argument("--out", default=None, help="results directory (default bench/results)")
    Delays.add_arguments(o)
    o.set_defaults(func=cmd_overhead)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return 0 if result is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
