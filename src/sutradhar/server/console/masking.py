"""The settings in force, as the console shows them: secrets masked.

A setting whose name says it holds a secret (key, token, secret, password) shows only whether it is
set. Every other value goes through the log redactor (`sutradhar.ops.logs.Redactor`), which knows
the configured secrets and the shapes of credentials (user:password@ in URLs, bearer values, keys),
so a secret pasted into an unexpected setting is masked too.
"""

from __future__ import annotations

import re
from typing import Any

from sutradhar.ops.logs import Redactor, settings_secrets

SECRET_NAME = re.compile(r"key|token|secret|password", re.IGNORECASE)
MASK = "•••••• (set)"
UNSET = "(not set)"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def display_value(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def settings_in_force(settings: Any) -> list[tuple[str, str]]:
    """(NAME, shown value) of every setting, sorted by name, secrets masked."""
    # Phone numbers stay: TRANSFER_NUMBER is configuration, not a caller's number.
    redact = Redactor(settings_secrets(settings), phone_numbers=False)
    rows = []
    for name in sorted(type(settings).model_fields):
        value = getattr(settings, name, None)
        if is_secret_name(name):
            shown = MASK if value else UNSET
        else:
            shown = redact(display_value(value))
        rows.append((name.upper(), shown))
    return rows
