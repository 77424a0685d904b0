"""Every log line carries call id, stage and language, and never a secret or a phone number."""

from __future__ import annotations

import io
import json
import logging

import pytest
from loguru import logger

from sutradhar.config import load_settings
from sutradhar.ops.logs import Redactor, call_context, setup_logging


@pytest.fixture
def settings():
    return load_settings(stt=["sarvam"], sarvam_api_key="sarvam-live-key-0042",
                         admin_token="admin-token-7777", twilio_account_sid="AC123",
                         twilio_auth_token="twilio-auth-9999")


@pytest.fixture
def capture():
    buffers = []

    def start(settings, **kwargs):
        buf = io.StringIO()
        buffers.append(buf)
        setup_logging(settings, stream=buf, **kwargs)
        return buf

    yield start
    logger.remove()
    logger.add(io.StringIO())  # leave loguru quiet for the other tests


def test_configured_secrets_and_auth_headers_are_removed(settings, capture):
    out = capture(settings)
    logger.info("sarvam call with api-subscription-key: sarvam-live-key-0042")
    logger.info("headers {}", {"api-subscription-key": "other-key-1", "Authorization": "Bearer eyJhbGciOi.x.y"})
    logger.warning("twilio basic Authorization: Basic QUMxMjM6dHdpbGlv and token twilio-auth-9999")
    logger.error("admin said admin-token-7777; openai sk-proj-abcdefghijklmnopqrstu; "
                 "url https://user:hunter22@db.example.com/x; api_key=k123 token=t456")
    text = out.getvalue()
    for secret in ("sarvam-live-key-0042", "other-key-1", "eyJhbGciOi", "QUMxMjM6dHdpbGlv",
                   "twilio-auth-9999", "admin-token-7777", "sk-proj-abc", "hunter22", "k123", "t456"):
        assert secret not in text, secret
    assert text.count("[REDACTED]") >= 9
    assert len(text.strip().splitlines()) == 4  # one event per line


def test_phone_numbers_are_redacted_when_configured(settings, capture):
    out = capture(settings)
    logger.info("call from +919876543210 to +91 40 6600 1234, callback 9876543210 or 098765-43210")
    logger.info("twilio sid CA0123456789abcdef0123456789abcdef, 16000 Hz, 20 ms, turn 3")
    first, second = out.getvalue().splitlines()
    for number in ("9876543210", "6600 1234", "98765-43210"):
        assert number not in first
    assert first.count("[PHONE]") == 4
    assert "CA0123456789abcdef0123456789abcdef" in second and "16000 Hz" in second

    settings.redact_phone_numbers = False
    out = capture(settings)
    logger.info("call from +919876543210")
    assert "+919876543210" in out.getvalue()


def test_call_id_stage_and_language_are_on_every_line(settings, capture):
    out = capture(settings)
    logger.info("before the call")
    with call_context("CA777", "te-IN"):
        logger.bind(stage="stt").info("heard something")
    first, second = out.getvalue().splitlines()
    assert "call=- stage=- lang=-" in first
    assert "call=CA777 stage=stt lang=te-IN" in second


def test_json_lines_and_stdlib_logging_go_through_the_same_filter(settings, capture):
    out = capture(settings, json_lines=True)
    with call_context("CA9", "hi-IN"):
        logging.getLogger("uvicorn.error").warning("client sent Bearer abc123def")
        try:
            raise ValueError("bad key sarvam-live-key-0042")
        except ValueError:
            logger.bind(stage="tts").exception("synthesis failed for +919876543210")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[0]["call_id"] == "CA9" and events[0]["logger"] == "uvicorn.error"
    assert events[0]["message"] == "client sent Bearer [REDACTED]"
    assert events[1]["stage"] == "tts" and events[1]["language"] == "hi-IN"
    assert "+919876543210" not in events[1]["message"]
    assert "sarvam-live-key-0042" not in events[1]["exception"] and "ValueError" in events[1]["exception"]


def test_redactor_leaves_ordinary_text_alone():
    redact = Redactor(["s3cret-value"])
    line = "turn 12 took 480 ms (stt 110, llm 240, tts 90); language hi-IN; 2024-06-01 10:00:00"
    assert redact(line) == line


def test_a_password_in_a_url_without_a_user_name_is_removed():
    # Redis URLs carry the password alone: redis://:password@host
    redact = Redactor([])
    line = redact("redis at redis://:redis-pass-5432@cache.internal:6379/0 is down")
    assert "redis-pass-5432" not in line and "cache.internal:6379/0" in line
    settings = load_settings(redis_url="redis://:other-pass-77@cache:6379/0")
    assert "other-pass-77" in Redactor.from_settings(settings).secrets


@pytest.mark.parametrize("level", ["WARNING", "INFO", "DEBUG"])
def test_stdlib_records_below_the_level_are_never_made(settings, capture, level):
    # httpcore traces every request at DEBUG: below the configured level no record may be built.
    out = capture(settings, level=level)
    httpcore = logging.getLogger("httpcore.connection")
    assert httpcore.isEnabledFor(logging.DEBUG) is (level == "DEBUG")
    logging.getLogger("httpx").info("HTTP Request: POST /v1/audio/speech")
    logging.getLogger("httpx").warning("retrying")
    assert ("HTTP Request" in out.getvalue()) is (level != "WARNING")
    assert "retrying" in out.getvalue()
