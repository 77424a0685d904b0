"""Agent test scenarios: what a caller says and what must happen, one YAML file per scenario.

    name: order shipped (English)
    language: en-IN
    transport: twilio            # twilio (8 kHz phone line, default) or browser (16 kHz)
    turns:
      - say: Where is my order? The number is 4 5 6 7.     # or  wav: caller.wav  (next to the file)
        expect:
          tool: {name: order_status, arguments: {order_id: "4567"}}
          reply_contains: ["4567", shipped]
          state: tracking        # the flow state reached after this turn (flows only)
    end:
      status: completed          # completed | transferred
      results: {order_id: "4567"}   # post-call extraction (subset match)

Validated with pydantic: every problem of a file at once, each with its key path. `sutradhar test`
(sutradhar.cli.agent_test) runs them; an agent folder holds `agent.yaml` and `tests/*.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from sutradhar.errors import ConfigError
from sutradhar.text.languages import LANGUAGES

AGENT_FILE = "agent.yaml"
TESTS_DIR = "tests"


class ToolExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)  # each must match; others may be there


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: ToolExpectation | None = None
    reply_contains: list[str] = Field(default_factory=list)  # case-insensitive substrings
    state: str | None = None


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str | None = Field(None, min_length=1)
    wav: Path | None = None  # relative to the scenario file
    expect: Expectation = Field(default_factory=Expectation)

    @model_validator(mode="after")
    def _one_input(self) -> Turn:
        if (self.say is None) == (self.wav is None):
            raise ValueError("give exactly one of `say` (text) or `wav` (a file)")
        return self


class Ending(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["completed", "transferred"] | None = None
    results: dict[str, Any] | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    language: str
    transport: Literal["twilio", "browser"] = "twilio"
    turns: list[Turn] = Field(min_length=1)
    end: Ending = Field(default_factory=Ending)
    _path: Path = PrivateAttr(default_factory=Path)  # the file it came from (set by the loader)

    @model_validator(mode="after")
    def _known_language(self) -> Scenario:
        if self.language not in LANGUAGES:
            raise ValueError(f"language: unknown {self.language!r}; known: {', '.join(sorted(LANGUAGES))}")
        return self

    @property
    def path(self) -> Path:
        return self._path

    def wav_path(self, turn: Turn) -> Path:
        assert turn.wav is not None
        return turn.wav if turn.wav.is_absolute() else self.path.parent / turn.wav


def _problems(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if not where and ": " in message:  # a model-level check names its own key
            where, _, message = message.partition(": ")
        lines.append(f"  {where or 'scenario'}: {message}")
    return list(dict.fromkeys(lines))


def load_scenario(path: str | Path) -> Scenario:
    """The scenario file at `path`; one ConfigError listing every problem with its key path."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"scenario {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"scenario {path}: expected a mapping with name, language and turns")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"scenario {path}:\n" + "\n".join(_problems(exc))) from None
    scenario._path = path
    missing = [f"  turns.{n}.wav: no file {scenario.wav_path(t)}" for n, t in enumerate(scenario.turns)
               if t.wav is not None and not scenario.wav_path(t).is_file()]
    if missing:
        raise ConfigError(f"scenario {path}:\n" + "\n".join(missing))
    return scenario


def discover(target: str | Path) -> tuple[Path, list[Path]]:
    """(the agent file, its scenario files) for an agent folder (agent.yaml + tests/*.yaml) or one
    scenario file (its agent is agent.yaml beside it or beside its tests/ folder)."""
    target = Path(target)
    if target.is_dir():
        agent, files = target / AGENT_FILE, sorted((target / TESTS_DIR).glob("*.y*ml"))
        if not files:
            raise ConfigError(f"{target}: no scenarios in {target / TESTS_DIR}/*.yaml")
    elif target.is_file():
        files = [target]
        folder = target.parent.parent if target.parent.name == TESTS_DIR else target.parent
        agent = folder / AGENT_FILE
    else:
        raise ConfigError(f"{target}: no such agent folder or scenario file")
    if not agent.is_file():
        raise ConfigError(f"{target}: no {AGENT_FILE} found at {agent}")
    return agent, files


def load_all(files: list[Path]) -> list[Scenario]:
    """Every scenario, or one ConfigError with the problems of every bad file."""
    scenarios, errors = [], []
    for file in files:
        try:
            scenarios.append(load_scenario(file))
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return scenarios
