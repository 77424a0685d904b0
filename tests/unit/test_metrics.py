import math

from sutradhar.pipeline.metrics import MetricsCollector, percentile


def test_percentiles_and_averages():
    m = MetricsCollector()
    for v in range(1, 101):
        m.record_turn({"v2v_ms": float(v), "stt_ms": None})
    s = m.summary()["v2v_ms"]
    assert s["avg"] == 50.5 and s["p50"] == 50.5 and s["p95"] == 95.05 and s["count"] == 100
    assert "stt_ms" not in m.summary()
    assert math.isnan(percentile([], 50))


def test_report_listeners_errors_and_reset():
    seen = []
    m = MetricsCollector(listeners=[seen.append])
    m.record_turn({"llm_ttft_ms": 120.0}, {"errors": [{"stage": "llm", "kind": "timeout"}]})
    report = m.generate_report()
    assert "LLM time to first token" in report and "llm:timeout=1" in report
    assert seen[0]["timings"] == {"llm_ttft_ms": 120.0}
    m.reset()
    assert m.turns == 0 and m.summary() == {} and m.errors == {}


def test_window_bounds_memory():
    m = MetricsCollector(window=10)
    for v in range(100):
        m.record("tts_ms", v)
    assert list(m.samples["tts_ms"]) == list(range(90, 100))
