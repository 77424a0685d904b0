"""A campaign call's greeting and system prompt: templates filled with the contact's variables.

`{name}` is replaced by the row's `name`; a placeholder the row lacks stays as written (visible in
the record, never an error mid-call). Plain substitution, not str.format: a template cannot reach
attributes or format specs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")


def render(template: str, variables: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: variables.get(m[1], m[0]), template)


@dataclass(frozen=True)
class CallScript:
    """What one outbound call says differently: its variables and the campaign's own prompts."""

    variables: dict[str, str] = field(default_factory=dict)
    greetings: dict[str, str] = field(default_factory=dict)  # language -> template
    system_prompts: dict[str, str] = field(default_factory=dict)

    def personalise(self, templates: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
        """The campaign's templates over the agent's (`templates`), each filled in."""
        return {code: render(text, self.variables) for code, text in {**templates, **own}.items()}
