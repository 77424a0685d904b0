"""The one rule for the ids that name a call: ours, the carrier's (CallSid, CallUUID, call_sid)
and its media stream's (streamSid, streamId): 1 to 128 visible ASCII characters.

They key the live-call registry, the call store (String(128) columns), log lines and URL paths, so
an id from a carrier, a caller or an operator is checked against this rule before anything keeps
it. Every carrier's real ids (34-character SIDs, UUIDs) fit with room to spare.
"""

from __future__ import annotations

import re

MAX_ID_CHARS = 128
# No spaces or control characters (they would split log lines and URLs); usable as an OpenAPI /
# pydantic `pattern` as well as here.
ID_PATTERN = rf"^[!-~]{{1,{MAX_ID_CHARS}}}$"
_ID = re.compile(ID_PATTERN)


def is_call_id(value: object) -> bool:
    """True for a string that may name a call (see the module docstring)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
