"""Sarvam socket errors map to the same error classes as the HTTP errors they stand for."""

from __future__ import annotations

import pytest

from sutradhar.engines.base import (
    AuthError,
    BadRequest,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
)
from sutradhar.engines.http import error_from_response
from sutradhar.engines.sarvam.common import ws_error


@pytest.mark.parametrize(("data", "error", "status"), [
    ({"message": "slow down", "code": 429}, RateLimited, 429),  # TTS: integer code
    ({"message": "slow down", "code": "429"}, RateLimited, 429),
    ({"message": "bad key", "code": 403}, AuthError, 403),
    ({"message": "bad config", "code": 422}, BadRequest, 422),
    ({"error": "key revoked", "code": "authentication_error"}, AuthError, None),  # STT: ErrorData
    ({"error": "no credits", "code": "insufficient_quota_error"}, QuotaExceeded, None),
    ({"error": "upstream", "code": "model_call_error"}, ProviderError, None),
    ({"error": "late", "code": "gateway_timeout_error"}, ProviderTimeout, None),
])
def test_socket_error_class_follows_string_or_integer_code(data: dict[str, object], error: type,
                                                           status: int | None) -> None:
    mapped = ws_error(data, provider="sarvam", stage="tts")
    assert type(mapped) is error and mapped.status == status
    assert str(data.get("message") or data.get("error")) in str(mapped)


@pytest.mark.parametrize("status", [403, 422, 429, 500])
def test_integer_socket_code_behaves_like_the_same_http_status(status: int) -> None:
    over_http = error_from_response(status, b'{"error": {"message": "x"}}', {}, provider="sarvam",
                                    stage="tts")
    over_socket = ws_error({"message": "x", "code": status}, provider="sarvam", stage="tts")
    assert type(over_socket) is type(over_http)
    assert over_socket.retryable is over_http.retryable


def test_stt_error_text_under_error_is_kept() -> None:
    mapped = ws_error({"error": "Audio too short", "code": "invalid_request_error"},
                      provider="sarvam", stage="stt")
    assert isinstance(mapped, BadRequest) and "Audio too short" in str(mapped)
