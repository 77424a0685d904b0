"""An agent as one file: `agent.yaml`, validated with pydantic, every error at once with its key path.

    name: order-status
    languages: [hi-IN, en-IN]       # the first is the default unless default_language says
    prompts:
      hi-IN:
        greeting: नमस्ते! मैं आपके ऑर्डर की स्थिति बता सकता हूँ।
        system: You are the order-status line of ...
    tools:
      - order_status                # a packaged or built-in tool, by name
      - name: shop_status           # or a webhook tool (the shape of agents/webhooks.py)
        description: ...
        url: https://shop.example.com/status
    voicemail:                      # an outbound call answered by a machine (telephony/screening.py)
      action: leave_message         # or hang_up (the default: VOICEMAIL_ACTION)
      message:                      # said once after the beep; else the language's standard line
        hi-IN: नमस्ते, आपके ऑर्डर के बारे में कॉल किया था। हम फिर से कॉल करेंगे।

    turn_taking:                    # optional: this agent's end of turn and barge-in (else the settings)
      policy: semantic              # or silence
      backchannels: false           # caller speech over the reply interrupts at once
    flow: ...                       # optional: states, prompts, transitions (agents/flow_spec.py)
    results:                        # optional: after the call (agents/results.py)
      summary: true
      extract: {schema: {order_id: str, resolved: bool}}
      webhook: {url: https://crm.example.com/calls, secret_env: CRM_WEBHOOK_SECRET}

`sutradhar serve --agent FILE` loads it: its languages and tools replace LANGUAGES, DEFAULT_LANGUAGE
and TOOLS, and each call is greeted and prompted in its language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sutradhar.agents.flow_spec import FlowSpec
from sutradhar.agents.results import ResultsSpec
from sutradhar.agents.webhooks import WebhookToolConfig
from sutradhar.errors import ConfigError
from sutradhar.text.languages import LANGUAGES


class LanguagePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str | None = None  # None: the language's standard greeting
    system: str | None = None  # None: SYSTEM_PROMPT


class VoicemailSpec(BaseModel):
    """What to do when an outbound call reaches an answering machine."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["hang_up", "leave_message"] = "hang_up"
    message: dict[str, str] = Field(default_factory=dict)  # language -> what to leave


class TurnTaking(BaseModel):
    """An agent's own turn-taking; each key unset keeps the setting it names (config.py)."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["semantic", "silence"] | None = None  # TURN_POLICY
    pause_ms: int | None = Field(None, ge=60, le=2000)  # PAUSE_MS: a complete turn ends here
    max_wait_ms: int | None = Field(None, ge=200, le=5000)  # END_OF_TURN_MAX_MS
    number_wait_ms: int | None = Field(None, ge=100, le=5000)  # END_OF_TURN_NUMBER_MS
    silence_ms: int | None = Field(None, ge=100, le=5000)  # END_OF_TURN_SILENCE_MS
    speculate: bool | None = None  # SPECULATE
    speculate_pause_ms: int | None = Field(None, ge=40, le=2000)  # SPECULATE_PAUSE_MS
    acoustic_model: Literal["none", "smart-turn"] | None = None  # TURN_ACOUSTIC_MODEL
    backchannels: bool | None = None  # BACKCHANNELS
    backchannel_max_ms: int | None = Field(None, ge=100, le=5000)  # BACKCHANNEL_MAX_MS
    barge_in_min_speech_ms: int | None = Field(None, ge=20, le=2000)  # BARGE_IN_MIN_SPEECH_MS

    def settings(self) -> dict[str, Any]:
        """The settings this agent sets, by their config.py names."""
        return {_TURN_SETTINGS.get(key, key): value for key, value in self.model_dump().items()
                if value is not None}


# The agent file's short names for turn-taking settings (the others are the settings' own names).
_TURN_SETTINGS = {"policy": "turn_policy", "max_wait_ms": "end_of_turn_max_ms",
                  "number_wait_ms": "end_of_turn_number_ms", "silence_ms": "end_of_turn_silence_ms",
                  "acoustic_model": "turn_acoustic_model"}


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    languages: list[str] = Field(min_length=1)
    default_language: str | None = None
    prompts: dict[str, LanguagePrompt] = Field(default_factory=dict)
    tools: list[str | WebhookToolConfig] = Field(default_factory=list)
    flow: FlowSpec | None = None
    results: ResultsSpec | None = None
    turn_taking: TurnTaking | None = None  # None: the TURN_POLICY, BACKCHANNELS ... settings
    voicemail: VoicemailSpec | None = None  # None: VOICEMAIL_ACTION with the standard lines

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        problems = [f"languages.{n}: unknown language {code!r}; known: {', '.join(sorted(LANGUAGES))}"
                    for n, code in enumerate(self.languages) if code not in LANGUAGES]
        if self.default_language is not None and self.default_language not in self.languages:
            problems.append(f"default_language: {self.default_language!r} is not one of languages")
        problems += [f"prompts.{code}: not one of languages" for code in self.prompts
                     if code not in self.languages]
        if self.voicemail is not None:
            problems += [f"voicemail.message.{code}: not one of languages" for code in self.voicemail.message
                         if code not in self.languages]
            problems += [f"voicemail.message.{code}: empty" for code, text in self.voicemail.message.items()
                         if not text.strip()]
        names = [t if isinstance(t, str) else t.name for t in self.tools]
        problems += [f"tools.{n}: {name!r} is listed twice" for n, name in enumerate(names)
                     if name in names[:n]]
        if self.flow is not None:
            problems += self.flow.problems(self.languages, names)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def default(self) -> str:
        return self.default_language or self.languages[0]

    @property
    def tool_names(self) -> list[str]:
        return [t if isinstance(t, str) else t.name for t in self.tools]

    @property
    def webhook_tools(self) -> list[WebhookToolConfig]:
        return [t for t in self.tools if isinstance(t, WebhookToolConfig)]

    def greetings(self) -> dict[str, str]:
        return {code: p.greeting for code, p in self.prompts.items() if p.greeting}

    def system_prompts(self) -> dict[str, str]:
        return {code: p.system for code, p in self.prompts.items() if p.system}

    def settings_overrides(self) -> dict[str, Any]:
        """What the agent decides of the settings (the rest stays the environment's)."""
        turn_taking = self.turn_taking.settings() if self.turn_taking is not None else {}
        return {"languages": list(self.languages), "default_language": self.default,
                "tools": self.tool_names, **turn_taking}


# The union branches pydantic names in a location ("tools.1.WebhookToolConfig.url", a line that
# is "str" or "dict[str,str]"): not keys of the file.
_UNION_BRANCHES = frozenset({"str", "WebhookToolConfig", "dict[str,str]", "dict[str,union[dict[str,str],str]]"})


def _where(loc: tuple[Any, ...]) -> str:
    # pydantic names the union branch it tried ("tools.1.WebhookToolConfig.url"): keep the key path.
    return ".".join(str(p) for p in loc if p not in _UNION_BRANCHES) or "agent"


def load_agent(path: str | Path) -> AgentSpec:
    """The agent file at `path`; one ConfigError listing every problem with its key path."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"agent {path}: {exc}") from exc
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where, message = _where(err["loc"]), err["msg"].removeprefix("Value error, ")
            # A string tool that is not a name fails the `str` branch too; that says nothing new.
            if err["type"] == "string_type" and where.startswith("tools."):
                continue
            # The whole file's checks name their own key paths.
            lines += [f"  {part}" for part in message.split("; ")] if where == "agent" \
                else [f"  {where}: {message}"]
        raise ConfigError(f"agent {path}:\n" + "\n".join(dict.fromkeys(lines))) from None
