"""Sarvam chat through the OpenAI-compatible client: headers, reasoning never spoken, errors."""

from __future__ import annotations

import pytest

from sutradhar.engines.base import AuthError, Message, QuotaExceeded
from sutradhar.engines.sarvam.llm import SarvamLLM
from tests.fakes import FakeSarvam, Fault

MESSAGES = [Message("system", "Be brief."), Message("user", "नमस्ते")]


def client(fake: FakeSarvam) -> SarvamLLM:
    return SarvamLLM(base_url=fake.base_url, api_key=fake.api_key, timeout_s=2.0)


async def test_streams_content_and_never_reasoning(fake_sarvam: FakeSarvam) -> None:
    fake_sarvam.reasoning = "The user greets me so I should greet back"
    fake_sarvam.reply("नमस्ते! मैं आपकी क्या मदद कर सकता हूँ?")
    llm = client(fake_sarvam)
    text = "".join([d async for d in llm.stream(MESSAGES, "hi-IN")])
    await llm.aclose()
    assert text == "नमस्ते! मैं आपकी क्या मदद कर सकता हूँ?"
    call = fake_sarvam.calls("chat")[0]
    assert call["json"]["reasoning_effort"] is None  # sent as JSON null: no reasoning
    assert call["json"]["stream"] is True and call["json"]["model"] == "sarvam-105b-conversations"
    assert call["headers"]["api-subscription-key"] == fake_sarvam.api_key


@pytest.mark.parametrize(("fault", "error"), [(Fault.forbidden(), AuthError), (Fault.quota(), QuotaExceeded)])
async def test_errors(fake_sarvam: FakeSarvam, fault: Fault, error: type) -> None:
    fake_sarvam.inject("chat", fault)
    llm = client(fake_sarvam)
    with pytest.raises(error) as caught:
        async for _ in llm.stream(MESSAGES, "hi-IN"):
            pass
    await llm.aclose()
    assert caught.value.request_id == fault.request_id and not caught.value.retryable


async def test_low_reasoning_raises_max_tokens_so_content_can_start(fake_sarvam: FakeSarvam) -> None:
    llm = SarvamLLM(base_url=fake_sarvam.base_url, api_key=fake_sarvam.api_key, max_tokens=120,
                    reasoning_effort="low")
    async for _ in llm.stream(MESSAGES, "hi-IN"):
        pass
    await llm.aclose()
    body = fake_sarvam.calls("chat")[0]["json"]
    assert body["reasoning_effort"] == "low" and body["max_tokens"] == 500
