"""The SSE parser copes with any split of the byte stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sutradhar.engines.base import AuthError, QuotaExceeded, RateLimited
from sutradhar.engines.http import SSEParser, error_from_response

STREAM = (b'data: {"a": 1}\n\n: keep-alive comment\n\ndata: {"b": 2}\r\n\r\n'
          b"event: message\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n")
EVENTS = ['{"a": 1}', '{"b": 2}', "line one\nline two", "[DONE]"]


def test_parses_events_comments_crlf_and_multiline_data() -> None:
    assert SSEParser().feed(STREAM) == EVENTS


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=12))
def test_any_split_of_the_stream_gives_the_same_events(cuts: list[int]) -> None:
    parser = SSEParser()
    events: list[str] = []
    edges = [0, *sorted(set(cuts)), len(STREAM)]
    for start, end in zip(edges, edges[1:]):
        events += parser.feed(STREAM[start:end])
    assert events == EVENTS


def test_pending_event_without_final_blank_line_is_flushed_on_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert parser.close() == ["tail"]


def test_error_mapping_reads_either_dialect_and_header_request_id() -> None:
    quota = error_from_response(429, b'{"error":{"message":"m","code":"insufficient_quota_error"}}',
                                {"x-request-id": "h1"}, provider="sarvam", stage="tts")
    assert isinstance(quota, QuotaExceeded) and quota.request_id == "h1"
    assert isinstance(error_from_response(429, b"{}", {}, provider="p", stage="llm"), RateLimited)
    auth = error_from_response(403, b"not json", {}, provider="p", stage="llm")
    assert isinstance(auth, AuthError) and "not json" in auth.message
