"""The console's pure parts: the session cookie, settings masking, the turn waterfall and the
latency percentiles."""

from __future__ import annotations

import time

import pytest

from sutradhar.config import load_settings
from sutradhar.server.console.auth import (
    SESSION_S,
    new_session,
    safe_next,
    session_valid,
    session_value,
)
from sutradhar.server.console.latency import charts, percentile
from sutradhar.server.console.masking import MASK, UNSET, settings_in_force
from sutradhar.server.console.timeline import waterfall

TOKEN = "admin-token-0123456789"


# --- the session cookie -----------------------------------------------------------------------

def test_a_session_cookie_never_holds_the_token_and_is_valid_until_it_expires():
    now = time.time()
    value = new_session(TOKEN, now)
    assert TOKEN not in value and TOKEN[-8:] not in value
    assert session_valid(TOKEN, value, now)
    assert session_valid(TOKEN, value, now + SESSION_S - 1)
    assert not session_valid(TOKEN, value, now + SESSION_S + 1)


def test_a_session_is_void_under_another_token_or_when_tampered_with():
    value = new_session(TOKEN)
    assert not session_valid("another-token", value)
    expires, _, mac = value.partition(".")
    later = str(int(expires) + 3600)
    assert not session_valid(TOKEN, f"{later}.{mac}")  # a longer life with the old signature
    assert not session_valid(TOKEN, f"{expires}.{'0' * len(mac)}")
    for junk in ("", "garbage", ".", f"{expires}.", "abc.def", None):
        assert not session_valid(TOKEN, junk)
    assert not session_valid("", session_value("", int(time.time()) + 60))  # no token, no sessions


def test_a_forged_far_future_session_is_refused_even_if_signed():
    far = int(time.time()) + 10 * SESSION_S
    assert not session_valid(TOKEN, session_value(TOKEN, far))


@pytest.mark.parametrize("target, expected", [
    ("/console/calls?page=2", "/console/calls?page=2"),
    ("/console", "/console"),
    ("https://evil.example/console", "/console"),
    ("//evil.example/console", "/console"),
    ("/other", "/console"),
    ("", "/console"),
    (None, "/console"),
])
def test_login_returns_only_to_console_pages(target, expected):
    assert safe_next(target) == expected


# --- settings masking -------------------------------------------------------------------------

def test_secret_settings_show_only_whether_they_are_set():
    settings = load_settings(stt=["scripted"], llm=["scripted"], tts=["scripted"],
                             sarvam_api_key="sk_live_sarvam_abcdefghijklmnop", admin_token=TOKEN,
                             twilio_account_sid="AC123", twilio_auth_token="twilio-auth-secret-42")
    shown = dict(settings_in_force(settings))
    assert shown["SARVAM_API_KEY"] == MASK and shown["ADMIN_TOKEN"] == MASK
    assert shown["TWILIO_AUTH_TOKEN"] == MASK and shown["OPENAI_API_KEY"] == UNSET
    assert shown["STT"] == "scripted" and shown["PORT"] == "8000"
    page = repr(shown)
    for secret in ("sk_live_sarvam_abcdefghijklmnop", TOKEN, "twilio-auth-secret-42"):
        assert secret not in page


def test_credentials_inside_urls_and_secrets_pasted_elsewhere_are_masked():
    settings = load_settings(stt=["scripted"], llm=["scripted"], tts=["scripted"],
                             database_url="postgresql+asyncpg://sutradhar:db-pass-9876@db.internal/calls",
                             redis_url="redis://:redis-pass-5432@cache.internal:6379/0",
                             openai_api_key="sk-proj-abcdefghijklmnopqrstu",
                             system_prompt="Be brief. sk-proj-abcdefghijklmnopqrstu")
    shown = dict(settings_in_force(settings))
    assert "db-pass-9876" not in shown["DATABASE_URL"] and "db.internal/calls" in shown["DATABASE_URL"]
    assert "redis-pass-5432" not in shown["REDIS_URL"] and "cache.internal" in shown["REDIS_URL"]
    assert "sk-proj-abcdefghijklmnopqrstu" not in shown["SYSTEM_PROMPT"]
    assert shown["SYSTEM_PROMPT"].startswith("Be brief.")


# --- the waterfall ----------------------------------------------------------------------------

def test_the_waterfall_puts_the_wait_first_and_the_stages_after_it_ending_at_first_audio():
    w = waterfall({"stt_ms": 120.0, "llm_ttft_ms": 300.0, "tts_ttfb_ms": 80.0, "v2v_ms": 1100.0,
                   "v2v_wire_ms": 1130.5, "llm_ms": 900.0})
    assert [(b.key, b.start_ms, b.length_ms) for b in w.bars] == [
        ("wait_ms", 0.0, 600.0), ("stt_ms", 600.0, 120.0), ("llm_ttft_ms", 720.0, 300.0),
        ("tts_ttfb_ms", 1020.0, 80.0)]
    assert [(m.key, m.at_ms) for m in w.markers] == [("v2v_ms", 1100.0), ("v2v_wire_ms", 1130.5)]
    assert w.span_ms == 1130.5 and w.x(1130.5, 500) == 500


def test_an_early_stt_that_overlapped_the_wait_leaves_no_negative_wait():
    w = waterfall({"stt_ms": 500.0, "llm_ttft_ms": 300.0, "tts_ttfb_ms": 100.0, "v2v_ms": 700.0})
    assert w.bars[0].key == "wait_ms" and w.bars[0].length_ms == 0.0


def test_a_turn_without_timings_has_no_waterfall():
    assert waterfall({}) is None
    assert waterfall({"stt_ms": None, "v2v_ms": None}) is None
    assert [b.key for b in waterfall({"stt_ms": 50.0}).bars] == ["stt_ms"]


# --- latency at a glance ----------------------------------------------------------------------

def test_percentiles_are_values_that_occurred():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0


def test_charts_group_voice_to_voice_by_language_and_stages_by_provider_with_errors():
    turns = [
        {"language": "hi-IN", "stt_provider": "sarvam", "llm_provider": "sarvam", "tts_provider": "piper",
         "v2v_wire_ms": 900.0, "stt_ms": 200.0, "llm_ttft_ms": 300.0, "tts_ttfb_ms": 90.0, "errors": []},
        {"language": "hi-IN", "stt_provider": "local", "llm_provider": "sarvam", "tts_provider": "piper",
         "v2v_wire_ms": 1500.0, "stt_ms": 400.0, "llm_ttft_ms": 350.0, "tts_ttfb_ms": 95.0,
         "errors": [{"stage": "stt", "provider": "sarvam", "kind": "timeout"}]},
        {"language": "te-IN", "stt_provider": "sarvam", "llm_provider": "sarvam", "tts_provider": "piper",
         "v2v_wire_ms": None, "stt_ms": 210.0, "llm_ttft_ms": None, "tts_ttfb_ms": None, "errors": []},
    ]
    by_key = {c.key: c for c in charts(turns)}
    v2v = {s.group: s for s in by_key["v2v_wire_ms"].stats}
    assert set(v2v) == {"hi-IN"} and (v2v["hi-IN"].p50, v2v["hi-IN"].p95, v2v["hi-IN"].count) == (900.0, 1500.0, 2)
    stt = by_key["stt_ms"]
    assert {s.group: (s.count, s.errors) for s in stt.stats} == {"local": (1, 0), "sarvam": (2, 1)}
    assert (stt.turns, stt.failed_turns) == (3, 1) and stt.error_rate == pytest.approx(1 / 3)
    assert by_key["llm_ttft_ms"].failed_turns == 0
