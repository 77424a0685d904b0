"""HTTP webhook tools declared in YAML: the LLM's arguments become the request, the response the result.

    tools:
      - name: order_status
        description: Look up an order by its number.
        url: https://shop.example.com/api/orders/status
        method: POST                  # GET sends the arguments as query parameters
        headers: {Authorization: "Bearer ${SHOP_TOKEN}"}   # ${VAR} is read from the environment
        timeout_s: 3
        parameters:                   # JSON schema of the arguments, shown to the LLM
          type: object
          properties: {order_id: {type: string}}
          required: [order_id]
        idempotent: true              # a read-only lookup, safe to run twice or for nothing
        prefetch:                     # start it with the turn when the caller says "order" and a
          slot: order_id              # number, alongside the LLM's first round (agents/prefetch.py)
          keywords: [order, ऑर्डर]     # or per language: {en-IN: [order], hi-IN: [ऑर्डर]}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from sutradhar.agents.prefetch import spoken_number_rule
from sutradhar.agents.tools import Tool, ToolContext
from sutradhar.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_RESULT_CHARS = 4000  # what the LLM is given of a long response body


class WebhookFailed(Exception):
    """The webhook answered with an error status."""


class WebhookPrefetch(BaseModel):
    """Start the tool with the turn when the caller says a keyword and reads out a number."""

    model_config = ConfigDict(extra="forbid")

    slot: str = Field(min_length=1)  # the argument the number fills
    keywords: list[str] | dict[str, list[str]] = Field(min_length=1)


class WebhookToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
    description: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(5.0, gt=0, le=60)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    interruptible: bool = True
    secrets: list[str] = Field(default_factory=list)
    idempotent: bool = False  # read-only, safe to run twice: required for `prefetch`
    prefetch: WebhookPrefetch | None = None

    @field_validator("prefetch")
    @classmethod
    def _prefetch_is_safe(cls, prefetch: WebhookPrefetch | None, info: ValidationInfo) -> WebhookPrefetch | None:
        # A field validator, not a model one: the error keeps the plain key path (tools.2.prefetch).
        if prefetch is None:
            return None
        if not (info.data.get("idempotent") and info.data.get("interruptible", True)):
            raise ValueError("prefetch needs idempotent: true and interruptible: true (a speculative "
                             "run may be cancelled or discarded)")
        properties = (info.data.get("parameters") or {}).get("properties") or {}
        if properties and prefetch.slot not in properties:
            raise ValueError(f"prefetch slot {prefetch.slot!r} is not one of the parameters")
        return prefetch


def _expand(value: str, env: Mapping[str, str], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) not in env:
            raise ConfigError(f"{where}: environment variable {match.group(1)} is not set")
        return env[match.group(1)]

    return _ENV.sub(one, value)


def webhook_tool(config: WebhookToolConfig, env: Mapping[str, str] | None = None) -> Tool:
    env = os.environ if env is None else env
    headers = {k: _expand(v, env, f"tool {config.name} header {k}") for k, v in config.headers.items()}
    required = tuple(config.parameters.get("required") or ())
    # One pool per tool, opened on first use: a call mid-conversation should not pay a TLS handshake.
    pool: list[httpx.AsyncClient] = []

    async def call(arguments: dict[str, Any], context: ToolContext) -> Any:
        missing = [name for name in required if name not in arguments]
        if missing:
            raise ValueError(f"missing arguments: {', '.join(missing)}")
        if not pool:
            pool.append(httpx.AsyncClient(timeout=config.timeout_s))
        request_headers = {**headers, "X-Sutradhar-Call-Id": context.call_id}
        if config.method == "GET":
            response = await pool[0].get(config.url, params=arguments, headers=request_headers)
        else:
            response = await pool[0].request(config.method, config.url, json=arguments,
                                             headers=request_headers)
        if response.status_code >= 400:
            raise WebhookFailed(f"{config.name} answered HTTP {response.status_code}")
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text[:MAX_RESULT_CHARS]

    async def close() -> None:
        while pool:
            await pool.pop().aclose()

    prefetch = (spoken_number_rule(config.prefetch.slot, config.prefetch.keywords)
                if config.prefetch is not None else None)
    return Tool(config.name, config.description, config.parameters, call, timeout_s=config.timeout_s,
                interruptible=config.interruptible, secrets=frozenset(config.secrets), close=close,
                idempotent=config.idempotent, prefetch=prefetch)


def load_webhook_tools(path: str | Path, env: Mapping[str, str] | None = None) -> list[Tool]:
    """Every webhook tool in the YAML file at `path`; one ConfigError naming every bad entry."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"webhook tools {path}: {exc}") from exc
    items = data.get("tools") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"webhook tools {path}: expected a top-level `tools:` list")
    tools, problems = [], []
    for n, item in enumerate(items):
        try:
            tools.append(webhook_tool(WebhookToolConfig.model_validate(item), env))
        except ValidationError as exc:
            problems += [f"tools[{n}].{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        except ConfigError as exc:
            problems.append(f"tools[{n}]: {exc}")
    if problems:
        raise ConfigError(f"webhook tools {path}:\n  " + "\n  ".join(problems))
    return tools
