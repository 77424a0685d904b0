"""Sarvam chat: the OpenAI-compatible client pointed at `{base}/v1` with Sarvam's key header.

Sarvam's models reason by default, which costs seconds and can leave `content` null while
`reasoning_content` fills up. For a phone call we ask for no (or low) reasoning, and the shared
client only ever yields `content`, so reasoning is never spoken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sutradhar.engines.openai.compat import OpenAIChat
from sutradhar.engines.sarvam.common import AUTH_HEADER, SARVAM_LANGUAGES


@dataclass
class SarvamLLM(OpenAIChat):
    name: str = "sarvam"
    model: str = "sarvam-105b-conversations"
    health_path: str | None = None  # Sarvam documents no cheap GET; health uses the last result
    reasoning_effort: str | None = None  # None is sent as JSON null: no reasoning, lowest latency
    languages: frozenset[str] | None = SARVAM_LANGUAGES
    extra_body: dict[str, Any] = field(default_factory=dict)
    max_tokens_param: str = "max_tokens"  # Sarvam's chat API documents max_tokens only

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.extra_body = {"reasoning_effort": self.reasoning_effort, **self.extra_body}
        if self.reasoning_effort and (self.max_tokens or 0) < 500:
            # Reasoning tokens count against max_tokens; with too few, `content` never starts.
            self.max_tokens = 500

    def auth_headers(self) -> dict[str, str]:
        # Chat accepts either header; both are sent, as pipecat does.
        return {AUTH_HEADER: self.api_key, "Authorization": f"Bearer {self.api_key}"}
