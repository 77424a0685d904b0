"""`sutradhar bench`: the benchmark suite's command line (also `python bench/run.py ...`).

Subcommands (each writes JSON to bench/results/, see bench/README.md):
  overhead  in-process orchestration overhead over many scripted turns (+ optional profile)
  tools     first audio of a turn with a 300 ms tool (with/without prefetch) vs one without
  load      real server + N concurrent simulated Twilio calls over loopback, swept over N
  local     one call's turns through the offline local engines: real latency per stage
  frames    micro-benchmark of the per-frame telephony work (decode, VAD, encode)
  stt       Whisper WER and real-time factor on phone-band speech, per model and setting
            (--latency: voice-to-voice at the caller with a batch and a streaming STT)
  turns     turn-taking at the caller in four languages: pauses, short answers, backchannels
  memory    server RSS at idle, under N idle sockets / N calls and after they end (+ tracemalloc)
  server    run the benchmark server alone (scripted engines with fixed delays)
  plot      draw the PNG of a load sweep result
  all       overhead + tools + frames + load (+ local when the engines are installed)
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


def _command(args: argparse.Namespace) -> str:
    return " ".join(["sutradhar bench", *getattr(args, "_argv", [args.command])])


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
    result = asyncio.run(overhead.run_all(d, levels, baseline_turns=10 if args.quick else 20,
                                          full_turns=args.full_turns))
    result.update(loop=loop, log_level=args.log_level, quick=args.quick, command=_command(args))
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


# --- load ---

QUICK_SWEEP = "1,20,50"
DEFAULT_SWEEP = "1,10,50,100,200"
HTTP_SWEEP = "1,10,50,100,200,300"  # --providers http: no extension, ~6 min


def cmd_load(args: argparse.Namespace) -> dict:
    if args.src:  # measure another checkout's server (development); before any sutradhar import
        sys.path.insert(0, args.src)
    from bench import load

    d = Delays.from_args(args)
    http = args.providers == "http"
    default_sweep = QUICK_SWEEP if args.quick else HTTP_SWEEP if http else DEFAULT_SWEEP
    levels = [int(x) for x in (args.sweep or default_sweep).split(",")]
    # Real HTTP costs the orchestrator more than in-process scripts: the sweep reports each level
    # rather than stopping at the scripted limit (which the 1-call step could already pass).
    max_overhead = args.max_overhead_p95 if args.max_overhead_p95 is not None else (1000.0 if http else 50.0)
    max_late = args.max_late_fraction if args.max_late_fraction is not None else (0.05 if http else 0.001)
    turns = args.turns if args.turns is not None else (1 if args.quick else 2)
    budget = args.budget_s if args.budget_s is not None else (100 if args.quick else 390)
    result = load.sweep(levels, d, turns, extend=not args.no_extend and not args.quick and not http,
                        max_overhead_p95=max_overhead, max_late_frac=max_late,
                        budget_s=budget, procs=args.client_procs, src=args.src, step=args.step,
                        max_n=args.max_calls, operations=not args.no_operations,
                        profile_dir=Path(args.out or "bench/results"), gc_freeze=args.gc_freeze,
                        resampler_quality=args.resampler_quality, providers=args.providers,
                        workers=args.workers, client_nice=args.client_nice,
                        profile_levels=tuple(int(x) for x in args.profile_server.split(",")) if args.profile_server else (),
                        log=lambda m: print(m, flush=True))
    result.update(delays_ms=d.as_dict(), turns_per_call=turns, plan=load.default_plan(turns), quick=args.quick,
                  providers=args.providers, workers=args.workers, client_nice=args.client_nice,
                  limits={"max_overhead_p95_ms": max_overhead, "max_late_fraction": max_late},
                  operations=not args.no_operations, gc_freeze=args.gc_freeze,
                  resampler_quality=args.resampler_quality, command=_command(args))
    path = write_result(args.name, result, args.out)
    print(load_table(result))
    try:
        from bench.plot import plot_load

        png = plot_load(json.loads(path.read_text()), path.parent / f"{args.name}.png")  # with the machine
        print(f"plot: {png}")
    except ImportError as exc:
        print(f"no plot ({exc})")
    print(f"result: {path}")
    return result


def load_table(result: dict) -> str:
    rows = []
    for r in result["levels"]:
        o, v, p, b, c = r["overhead_ms"], r["v2v_ms"], r["pacing"], r["barge_in"], r["cost"]
        rows.append([r["calls"], f"{r['calls_completed']}/{r['calls']}", r["turns_measured"], v["p50"], v["p95"],
                     o["p50"], o["p95"], o["p99"], p.get("audio_per_wall"), p["jitter_ms"]["p50"], p["jitter_ms"]["p99"], p["late_frames"],
                     p["bunched"], b["clear_after_confirm_ms"]["p50"], b["clear_after_confirm_ms"]["p95"],
                     b["last_frame_after_speech_ms"]["p95"], c["cpu_s_per_call_minute"], c["rss_per_call_mb"],
                     max((lag.get("p99") or 0) for lag in r["client_loop_lag_ms"]) if r["client_loop_lag_ms"] else None,
                     r.get("unanswered_turns"), r.get("talked_over_turns"), p.get("server_underruns"),
                     p.get("server_summaries"), c.get("provider_cpu_s_per_call_minute")])
    head = ["N", "calls ok", "turns", "v2v p50", "v2v p95", "overhead p50", "p95", "p99", "pacing (audio/wall)", "jitter p50",
            "jitter p99", "late frames", "bunched", "clear after VAD p50", "p95", "last frame after speech p95",
            "CPU s/call-min", "MB/call", "client lag p99", "unanswered", "talked over", "underruns",
            "calls with server figures", "provider CPU s/call-min"]
    tail = f"\nstopped: {result['stopped_because']}" if result.get("stopped_because") else ""
    return table(rows, head) + tail


def _add_load_args(lp: argparse.ArgumentParser) -> None:
    lp.add_argument("--quick", action="store_true",
                    help=f"sweep {QUICK_SWEEP}, 1 turn + barge-in per call, no extension (~1.5 min)")
    lp.add_argument("--sweep", default=None, help=f"concurrent calls per step (default {DEFAULT_SWEEP})")
    lp.add_argument("--no-extend", action="store_true",
                    help="do not go past the last level (default: +STEP calls while the limits hold)")
    lp.add_argument("--step", type=int, default=100, help="extension step in calls (default %(default)s)")
    lp.add_argument("--max-calls", type=int, default=1000, help="never go past this many calls")
    lp.add_argument("--turns", type=int, default=None,
                    help="normal turns per call before the barge-in turn (default 2; quick 1)")
    lp.add_argument("--max-overhead-p95", type=float, default=None,
                    help="stop the sweep when overhead p95 passes this (ms, default 50; 1000 with "
                         "--providers http)")
    lp.add_argument("--providers", choices=("scripted", "http"), default="scripted",
                    help="scripted: in-process engines of fixed delays (the bench server); http: the "
                         "production server (`sutradhar serve`) with its OpenAI engines calling a "
                         f"separate loopback provider process (default sweep {HTTP_SWEEP}, no extension)")
    lp.add_argument("--workers", type=int, default=1,
                    help="--providers http: server processes (`serve --workers N`, default %(default)s)")
    lp.add_argument("--max-late-fraction", type=float, default=None,
                    help="stop when more than this fraction of agent frames arrive late (default 0.001; "
                         "0.05 with --providers http)")
    lp.add_argument("--budget-s", type=float, default=None,
                    help="stop starting new steps after this many seconds (default 390; quick 100)")
    lp.add_argument("--client-procs", type=int, default=None,
                    help="client processes (default ceil(N/100), at most 4)")
    lp.add_argument("--client-nice", type=int, default=0,
                    help="run the load generator's processes this much nicer than the server and the "
                         "provider (callers are not on a real server's machine; default 0: equal)")
    lp.add_argument("--no-operations", action="store_true",
                    help="server without the call store / Prometheus / health monitor")
    lp.add_argument("--gc-freeze", action="store_true",
                    help="server calls gc.collect(); gc.freeze() once started (the fix under test for "
                         "full-collection pauses)")
    lp.add_argument("--resampler-quality", choices=("QQ", "LQ", "MQ", "HQ", "VHQ"), default=None,
                    help="server's TTS -> phone-line stream resampler at this soxr quality (the fix under "
                         "test for pacing; the server's own is HQ)")
    lp.add_argument("--profile-server", default=None, metavar="N,N",
                    help="sample the server with py-spy (30 s) at these levels; summary in the JSON")
    lp.add_argument("--src", default=None, help=argparse.SUPPRESS)  # another checkout's src (development)
    lp.add_argument("--out", default=None, help="results directory (default bench/results)")
    lp.add_argument("--name", default="load",
                    help="result name: bench/results/NAME-latest.json and NAME.png (default %(default)s)")
    Delays.add_arguments(lp)


# --- batch vs streaming STT ---

def cmd_stt(args: argparse.Namespace) -> dict:
    """Whisper's WER and speed on phone-band speech per setting; `--latency`: batch vs streaming."""
    if args.latency:
        return cmd_stt_latency(args)
    from bench import stt_phone
    from bench.overhead import quiet_logs

    quiet_logs(args.log_level)
    models = tuple(m.strip() for m in args.models.split(","))
    models_dir = Path(args.models_dir) if args.models_dir else load_settings_models_dir()
    result = stt_phone.main_run(models, args.voices, args.max_slowdown, models_dir,
                                Path(args.reuse) if args.reuse else None)
    result["command"] = _command(args)
    path = write_result(args.name or "stt-phone", result, args.out)
    print(stt_phone.summary_table(result))
    print(f"chosen (lowest WER, fewest changes within 1 point, at most {args.max_slowdown}x the old "
          f"default's p50): {result['chosen']}")
    print(f"result: {path}")
    return result


def load_settings_models_dir() -> Path:
    from sutradhar.config import load_settings

    return load_settings().models_dir


def cmd_stt_latency(args: argparse.Namespace) -> dict:
    """The same calls twice through the real server: a batch STT that starts after the end of
    the turn (`--stt-ms`), then a streaming STT fed while the caller speaks (`--stt-flush-ms`)."""
    import dataclasses

    from bench import load

    levels = [int(x) for x in args.sweep.split(",")]
    base = Delays.from_args(args)
    runs = {}
    for mode, d in (("batch", dataclasses.replace(base, stt_streaming=0)),
                    ("streaming", dataclasses.replace(base, stt_streaming=1))):
        print(f"--- {mode} STT ---", flush=True)
        runs[mode] = load.sweep(levels, d, args.turns, extend=False, max_overhead_p95=1e9,
                                max_late_frac=1.0, budget_s=args.budget_s, procs=None, src=None, step=0,
                                max_n=max(levels), operations=True, profile_dir=Path(args.out or "bench/results"),
                                gc_freeze=False, resampler_quality=None, profile_levels=(),
                                log=lambda m: print(m, flush=True))
        runs[mode].update(delays_ms=d.as_dict())
    result = {"runs": runs, "turns_per_call": args.turns, "command": _command(args)}
    path = write_result(args.name or "stt", result, args.out)
    print(stt_table(result))
    print(f"result: {path}")
    return result


def stt_table(result: dict) -> str:
    rows = []
    for mode, run in result["runs"].items():
        d = run["delays_ms"]
        stt = d["stt_flush_ms"] if d["stt_streaming"] else d["stt_ms"]
        for r in run["levels"]:
            v, vad = r["v2v_ms"], r.get("v2v_vad_ms") or {}
            rows.append([mode, r["calls"], r["turns_measured"], stt, v["p50"], v["p95"], vad.get("p50"),
                         r["overhead_ms"]["p50"]])
    return table(rows, ["STT", "calls", "turns", "STT on the critical path (ms)",
                        "v2v p50 (at the caller)", "v2v p95", "v2v p50 from the server's VAD end",
                        "overhead p50"])


# --- turn-taking ---

def cmd_turns(args: argparse.Namespace) -> dict:
    from bench import turns

    if args.languages:
        turns.CORPUS = {k: v for k, v in turns.CORPUS.items() if k in args.languages.split(",")}
    kinds = tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else ()
    result = turns.run(Delays.from_args(args), log=lambda m: print(m, flush=True), calls=args.calls,
                       kinds=kinds, acoustic=args.acoustic)
    result["command"] = _command(args)
    path = write_result(args.name, result, args.out)
    print(turns.table(result))
    print(f"result: {path}")
    return result


# --- memory ---

def cmd_memory(args: argparse.Namespace) -> dict:
    from bench import memory

    env = dict(kv.split("=", 1) for kv in args.server_env)
    result = memory.run(args.sockets, args.calls, args.settle_s, args.top, args.trim_interval_s, env,
                        log=lambda m: print(m, flush=True))
    result["command"] = _command(args)
    path = write_result(args.name, result, args.out)
    print(memory.table(result))
    print(f"result: {path}")
    return result


# --- answers: the offline question set through the local LLM, scored by expected facts ---

def cmd_tools(args: argparse.Namespace) -> dict:
    from bench import tool_turns
    from bench.overhead import quiet_logs

    quiet_logs(args.log_level)
    loop = "uvloop" if use_uvloop() else "asyncio"  # the server's loop
    result = asyncio.run(tool_turns.run(args.turns, args.llm_first_token_ms, args.llm_token_ms,
                                        args.tts_first_chunk_ms, args.tool_ms))
    result.update(command=_command(args), loop=loop)
    path = write_result("tools", result, args.out)
    print(tool_turns.tools_table(result))
    print(f"\nresult: {path}")
    return result


def cmd_answers(args: argparse.Namespace) -> dict:
    from bench import answers
    from bench.overhead import quiet_logs

    quiet_logs(args.log_level)
    result = answers.run(args.models_dir)
    result["command"] = _command(args)
    path = write_result("answers", result, args.out)
    print(answers_table(result))
    print(f"result: {path}")
    return result


def answers_table(result: dict) -> str:
    lines = [f"model {result['model']} (warm-up {result['warm_up_s']} s, max_tokens {result['max_tokens']}, "
             f"threads {result['threads']})"]
    for name, group in result["groups"].items():
        rows = [[r["key"], r["source"], r["first_clause_ms"], r["total_ms"], ", ".join(r["missing"]) or "ok",
                 r["reply"][:70]] for r in group["rows"]]
        lines += ["", f"{name}: {group['answered']}/{group['questions']} answered; model first clause p50 "
                      f"{group['first_clause_ms']['p50']} ms",
                  table(rows, ["question", "from", "first clause ms", "total ms", "missing", "reply"])]
    return "\n".join(lines)


# --- local engines ---

def cmd_local(args: argparse.Namespace) -> dict:
    from bench import local_engines
    from bench.overhead import quiet_logs

    quiet_logs(args.log_level)
    if not args.no_uvloop:
        use_uvloop()
    result = local_engines.run(args.turns, args.models_dir)
    if not args.in_process_only:
        print("in process done; now one Twilio call through the real server with the same engines", flush=True)
        result["via_server"] = local_engines.run_via_server(args.turns, args.models_dir, args.turn_policy,
                                                            args.src)
    result["command"] = _command(args)
    path = write_result("local", result, args.out)
    print(local_table(result))
    print(f"result: {path}")
    return result


def local_table(result: dict) -> str:
    e = result["engines"]
    rows = [[r["turn"] + 1, r.get("by"), r["stt_ms"], r["llm_ttft_ms"], r["llm_ms"], r["tts_ttfb_ms"],
             r["v2v_ms"], r.get("first_audio_before_llm_end"), r.get("reply_sentences"), r["heard"],
             (r["reply"] or "")[:60]] for r in result["turns"]]
    st = result["stages_ms"]
    rows.append(["p50", "", st["stt_ms"]["p50"], st["llm_ttft_ms"]["p50"], st["llm_ms"]["p50"],
                 st["tts_ttfb_ms"]["p50"], st["v2v_ms"]["p50"], "", "", "", ""])
    head = ["turn", "by", "STT ms", "LLM TTFT ms", "LLM total ms", "TTS TTFB ms", "v2v ms",
            "audio before LLM end", "sentences", "heard", "reply"]
    text = (f"engines: STT {','.join(e['stt'])}; LLM {','.join(e['llm'])}; TTS {','.join(e['tts'])}"
            f" (warm-up {result['warm_up_s']} s)\n" + table(rows, head))
    via = result.get("via_server")
    if via:
        vrows = [[t.get("turn", 0) + 1, t.get("by"), t.get("v2v_ms"), t.get("stt_ms"), t.get("llm_ttft_ms"),
                  t.get("tts_ttfb_ms"), t.get("v2v_wire_ms"), t.get("heard"), (t.get("reply") or "")[:50]]
                 for t in via["turns"]]
        st, cv, by = via["server_stage_ms"], via["client_v2v_ms"], via.get("v2v_ms_by", {})
        vrows.append(["p50", "", cv["p50"], st["stt_ms"]["p50"], st["llm_ttft_ms"]["p50"],
                      st["tts_ttfb_ms"]["p50"], st["v2v_wire_ms"]["p50"], "", ""])
        s = via.get("settings", {})
        text += (f"\n\nThrough the real server, one Twilio call (client clock; the server's stage timings; "
                 f"TURN_POLICY={s.get('turn_policy')} SPECULATE={s.get('speculate')}):\n"
                 + table(vrows, ["turn", "by", "caller v2v ms", "STT ms", "LLM first text ms", "TTS first audio ms",
                                 "server v2v_wire ms", "heard", "reply"])
                 + "".join(f"\n{kind} turns: caller v2v p50 {v['p50']} ms (max {v['max']}, {v['count']} turns)"
                           for kind, v in by.items() if v.get("count"))
                 + (f"\ncall errors: {via['call_errors']}" if via["call_errors"] else ""))
    return text


# --- frames ---

def cmd_frames(args: argparse.Namespace) -> dict:
    if args.src:
        sys.path.insert(0, args.src)
    from bench import frames

    result = frames.run(args.calls)
    result["command"] = _command(args)
    path = write_result("frames", result, args.out)
    rows = [[group, name, us] for group, items in result["us_per_frame"].items() for name, us in items.items()]
    print(table(rows, ["where", "step", "µs per frame"]))
    print(json.dumps({"resampler": result["resampler_stream_delay"], "per_call": result["per_call"]}, indent=1))
    print(f"result: {path}")
    return result


# --- inbound ---

def cmd_inbound(args: argparse.Namespace) -> dict:
    from bench import inbound

    result = inbound.run(args.streams, args.seconds, args.settle_s, args.loop_frames)
    result["command"] = _command(args)
    path = write_result("inbound", result, args.out)
    rows = [[name, r["frames"], r["server_cpu_s"], r["us_per_frame"], r["core_percent"],
             result["cores_at_300_calls"][name]]
            for name, r in ((k, result[k]) for k in ("sutradhar", "asgi_floor", "asgi_floor_media_protocol"))]
    print(table(rows, ["server", "frames", "CPU s", "µs per frame", "% of a core",
                       "cores at 300 calls"]))
    print(f"ours (sutradhar - floor): {result['ours_us_per_frame']} µs per frame; the media loop alone, "
          f"in process: {result['media_loop_in_process']['us_per_frame']} µs per frame")
    print(f"result: {path}")
    return result


# --- all ---

def cmd_all(args: argparse.Namespace) -> dict:
    """overhead, tools, frames, local (when its engines load) and load, each with its defaults or --quick."""
    parser = build_parser()
    common = ["--out", args.out] if args.out else []
    quick = ["--quick"] if args.quick else []
    results: dict = {}
    steps = [("overhead", ["overhead", *quick, *common]),
             ("tools", ["tools", *(["--turns", "5"] if args.quick else []), *common]),
             ("frames", ["frames", *common])]
    if not args.skip_local:
        steps.append(("local", ["local", "--turns", "2" if args.quick else "4", *common,
                                *(["--in-process-only"] if args.quick else []),
                                *(["--models-dir", args.models_dir] if args.models_dir else [])]))
    steps.append(("load", ["load", *quick, *common]))
    for name, argv in steps:
        print(f"\n=== {name} ===", flush=True)
        sub_args = parser.parse_args(argv)
        sub_args._argv = argv
        try:
            results[name] = sub_args.func(sub_args) is not None
        except Exception as exc:  # noqa: BLE001 - one benchmark failing must not hide the others
            print(f"{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            results[name] = False
    print("\n" + ", ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in results.items()))
    return results if all(results.values()) else None


# --- report ---

def cmd_report(args: argparse.Namespace) -> dict:
    from bench import report

    text, path = report.write(args.results, args.output)
    print(text)
    print(f"written: {path}")
    return {}


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

    tl = sub.add_parser("tools", help="first audio of a turn with a tool call vs one without (in process)",
                        description="First audio with no tools, with a scripted tool, and with the tool "
                                    "prefetched alongside LLM round 1 (TOOL_PREFETCH).")
    tl.add_argument("--turns", type=int, default=20, help="turns per mode (default %(default)s)")
    tl.add_argument("--tool-ms", type=float, default=300.0, help="the tool's run time (default %(default)s)")
    tl.add_argument("--llm-first-token-ms", type=float, default=200.0,
                    help="LLM time to first token, each round (default %(default)s)")
    tl.add_argument("--llm-token-ms", type=float, default=0.0, help="LLM delay per later token (default %(default)s)")
    tl.add_argument("--tts-first-chunk-ms", type=float, default=100.0,
                    help="TTS time to first chunk (default %(default)s)")
    tl.add_argument("--log-level", default="WARNING", help="loguru level on stderr")
    tl.add_argument("--out", default=None, help="results directory (default bench/results)")
    tl.set_defaults(func=cmd_tools)

    lp = sub.add_parser("load", help="real server + N concurrent simulated Twilio calls, swept over N",
                        description="Starts the real server (scripted engines, fixed delays) in a subprocess "
                                    "for every step and drives N concurrent Twilio media streams with real "
                                    "speech paced at 20 ms over loopback.")
    _add_load_args(lp)
    lp.set_defaults(func=cmd_load)

    an = sub.add_parser("answers", help="the offline question set through the local LLM, scored by facts",
                        description="Asks data/offline_questions.yaml through the local LLM as a call "
                                    "does (script and order tool first, the model for the rest) and "
                                    "scores each reply by its expected facts.")
    an.add_argument("--models-dir", default=None, help="where the GGUF is (default: the settings' MODELS_DIR)")
    an.add_argument("--log-level", default="WARNING", help="loguru level on stderr")
    an.add_argument("--out", default=None, help="results directory (default bench/results)")
    an.set_defaults(func=cmd_answers)

    lc = sub.add_parser("local", help="one call through the offline local engines: real latency per stage",
                        description="Builds the default engines with build_engines(settings) and runs "
                                    "several turns of real (espeak-ng) speech through the orchestrator.")
    lc.add_argument("--turns", type=int, default=4, help="caller turns (default %(default)s)")
    lc.add_argument("--models-dir", default=None,
                    help="where the GGUF / Whisper models are (default: the settings' MODELS_DIR)")
    lc.add_argument("--log-level", default="WARNING", help="loguru level on stderr")
    lc.add_argument("--in-process-only", action="store_true",
                    help="skip the second part: one Twilio call through the real server with the same engines")
    lc.add_argument("--turn-policy", choices=("semantic", "silence"), default=None,
                    help="the server's TURN_POLICY for the Twilio call (default: the shipped setting; "
                         "silence: the plain end-of-turn window, the figure before the semantic default)")
    lc.add_argument("--no-uvloop", action="store_true")
    lc.add_argument("--out", default=None, help="results directory (default bench/results)")
    # Another checkout's src for the server of the Twilio call (A/B runs; the in-process part
    # runs this checkout: the parser has imported sutradhar already).
    lc.add_argument("--src", default=None, help=argparse.SUPPRESS)
    lc.set_defaults(func=cmd_local)

    fr = sub.add_parser("frames", help="micro-benchmark of the per-frame telephony work (codecs, VAD)",
                        description="Times each per-frame step of a Twilio call alone, with cheaper "
                                    "alternatives alongside.")
    fr.add_argument("--calls", type=int, default=200, help="scale the CPU estimate to this many calls")
    fr.add_argument("--src", default=None, help=argparse.SUPPRESS)
    fr.add_argument("--out", default=None, help="results directory (default bench/results)")
    fr.set_defaults(func=cmd_frames)

    ib = sub.add_parser("inbound", help="server CPU per 20 ms inbound frame of N silent calls vs a bare ASGI app",
                        description="N Twilio streams sending silence into `sutradhar serve` and into a "
                                    "bare uvicorn WebSocket app: CPU per frame of each (~50 s).")
    ib.add_argument("--streams", type=int, default=100, help="concurrent streams (default 100)")
    ib.add_argument("--seconds", type=float, default=15.0, help="steady stretch measured (default 15)")
    ib.add_argument("--settle-s", type=float, default=8.0,
                    help="seconds for the streams to connect and their greetings to play (default 8)")
    ib.add_argument("--loop-frames", type=int, default=20_000,
                    help="messages through the media loop in process (default 20000)")
    ib.add_argument("--out", default=None, help="results directory (default bench/results)")
    ib.set_defaults(func=cmd_inbound)

    al = sub.add_parser("all", help="overhead, tools, frames, local and load in turn",
                        description="Every benchmark with its defaults (~10 min) or --quick (~2 min).")
    al.add_argument("--quick", action="store_true", help="the quick variant of each benchmark")
    al.add_argument("--skip-local", action="store_true", help="leave out the local engines benchmark")
    al.add_argument("--models-dir", default=None, help="passed to `local`")
    al.add_argument("--out", default=None, help="results directory (default bench/results)")
    al.set_defaults(func=cmd_all)

    st = sub.add_parser("stt", help="Whisper WER and real-time factor on phone-band speech per setting "
                                     "(--latency: voice-to-voice with a batch vs a streaming STT)",
                        description=(__import__("bench.stt_phone", fromlist=["x"]).__doc__ or "").split("\n\n")[0]
                        + " With --latency: the real server and simulated Twilio callers, once with a batch "
                          "STT (starts after the end of the turn) and once with a streaming STT (fed while "
                          "the caller speaks; only the flush is left).")
    st.add_argument("--latency", action="store_true",
                    help="batch vs streaming STT voice-to-voice at the caller (scripted engines)")
    st.add_argument("--models", default="tiny.en,base", help="Whisper models (default %(default)s)")
    st.add_argument("--voices", type=int, default=4, help="espeak-ng voices in the corpus, 1-6 (default %(default)s)")
    st.add_argument("--max-slowdown", type=float, default=1.15,
                    help="the new default's p50 on 2.5-3.5 s clips at most this times tiny.en greedy's "
                         "(~400 ms at idle, the STT budget), timed interleaved (default %(default)s)")
    st.add_argument("--models-dir", default=None, help="where Whisper base is (default: MODELS_DIR)")
    st.add_argument("--reuse", default=None, metavar="RESULT.json",
                    help="take the WER of settings an earlier run on the same corpus measured; only "
                         "the finalists are timed again")
    st.add_argument("--log-level", default="WARNING", help="loguru level on stderr")
    st.add_argument("--sweep", default="1,10", help="--latency: concurrent calls per step (default %(default)s)")
    st.add_argument("--turns", type=int, default=3, help="--latency: turns per call before the barge-in turn")
    st.add_argument("--budget-s", type=float, default=300, help="--latency: time budget of the sweep")
    st.add_argument("--out", default=None, help="results directory (default bench/results)")
    st.add_argument("--name", default=None, help="result name (default stt-phone; with --latency stt)")
    Delays.add_arguments(st)
    st.set_defaults(func=cmd_stt)

    tu = sub.add_parser("turns", help="turn-taking at the caller: pauses, short answers, backchannels, interruptions",
                        description=(__import__("bench.turns", fromlist=["x"]).__doc__ or "").split("\n\n")[0])
    tu.add_argument("--languages", default=None, help="comma-separated subset (default: all four)")
    tu.add_argument("--calls", type=int, default=1, help="callers saying each item at once (default 1)")
    tu.add_argument("--kinds", default=None,
                    help="comma-separated item kinds: question, short answer, unfinished + pause, "
                         "backchannel, interruption (default: all)")
    tu.add_argument("--acoustic", action="store_true",
                    help="also run the semantic policy with Smart Turn v3 (TURN_ACOUSTIC_MODEL=smart-turn) "
                         "and measure the model's latency and CPU per decision")
    tu.add_argument("--out", default=None, help="results directory (default bench/results)")
    tu.add_argument("--name", default="turns", help="result name (default %(default)s)")
    Delays.add_arguments(tu)
    tu.set_defaults(func=cmd_turns)

    me = sub.add_parser("memory", help="server RSS at idle, under N idle sockets / N calls, after they end",
                        description=(__import__("bench.memory", fromlist=["x"]).__doc__ or "").split("\n\n")[0])
    me.add_argument("--sockets", type=int, default=300, help="idle media sockets (default %(default)s)")
    me.add_argument("--calls", type=int, default=100, help="concurrent short calls (default %(default)s)")
    me.add_argument("--settle-s", type=float, default=12.0,
                    help="seconds idle after a round before reading 'after', longer than the server's "
                         "MEMORY_TRIM_INTERVAL_S (default %(default)s)")
    me.add_argument("--trim-interval-s", type=float, default=None,
                    help="the server's MEMORY_TRIM_INTERVAL_S (default: its setting; 0 = no trimming, as before)")
    me.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment of the server process, e.g. PYTHONMALLOC=malloc or MALLOC_ARENA_MAX=2")
    me.add_argument("--top", type=int, default=15, help="tracemalloc growth lines to show")
    me.add_argument("--out", default=None, help="results directory (default bench/results)")
    me.add_argument("--name", default="memory", help="result name (default %(default)s)")
    me.set_defaults(func=cmd_memory)

    rp = sub.add_parser("report", help="write bench/RESULTS.md from the *-latest.json results",
                        description="Tables for the README's Performance section, generated from the "
                                    "result files (never typed by hand), with the targets checked.")
    rp.add_argument("--results", default=None, help="results directory (default bench/results)")
    rp.add_argument("--output", default=None, help="markdown file (default bench/RESULTS.md)")
    rp.set_defaults(func=cmd_report)

    sv = sub.add_parser("server", help="run the benchmark server alone (scripted engines, fixed delays)",
                        add_help=False)
    sv.set_defaults(func=lambda a: _delegate("bench.bench_server", a.rest))
    pl = sub.add_parser("plot", help="draw the PNG of a load result: plot [RESULT.json [OUT.png]]",
                        add_help=False)
    pl.set_defaults(func=lambda a: _delegate("bench.plot", a.rest))
    return p


def _delegate(module: str, rest: list[str]) -> dict | None:
    import importlib

    code = importlib.import_module(module).main(rest)
    return {} if not code else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("server", "plot"):  # their own parsers take the rest of the line
        args = argparse.Namespace(func=build_parser().parse_args([argv[0]]).func, rest=argv[1:])
        return 0 if args.func(args) is not None else 1
    args = build_parser().parse_args(argv)
    args._argv = argv
    result = args.func(args)
    return 0 if result is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
