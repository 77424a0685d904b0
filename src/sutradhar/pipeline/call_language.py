"""LanguageCoordinator: which language one call is in.

Set by the IVR or the caller, and switched automatically only after `switch_threshold`
consecutive turns detected in the same other language (hysteresis against flapping detections).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sutradhar.text.langid import dominant_script
from sutradhar.text.languages import LANGUAGES, LanguageInfo, language_info


@dataclass
class Detection:
    language: str
    at: float
    source: str  # "stt", "text", "caller", "ivr"


@dataclass
class LanguageCoordinator:
    """One call's processing language, with hysteresis against flapping detections."""

    current: str = "en-IN"
    supported: tuple[str, ...] = ("te-IN", "hi-IN", "en-IN", "gu-IN")
    switch_threshold: int = 2
    min_turns_before_switch: int = 1
    history: deque[Detection] = field(default_factory=lambda: deque(maxlen=5))
    switches: list[dict[str, Any]] = field(default_factory=list)
    _candidate: str | None = None
    _streak: int = 0
    _turns: int = 0

    def __post_init__(self) -> None:
        language_info(self.current)
        for code in self.supported:
            language_info(code)

    @property
    def info(self) -> LanguageInfo:
        return LANGUAGES[self.current]

    def set_language(self, code: str, source: str = "caller") -> bool:
        """Set the language explicitly (IVR digit, caller request). Returns True if it changed."""
        if code not in self.supported:
            raise ValueError(f"language {code!r} is not enabled for this agent ({', '.join(self.supported)})")
        self._candidate, self._streak = None, 0
        self.history.append(Detection(code, time.time(), source))
        return self._switch_to(code, source)

    def set_detected_language(self, code: str | None, source: str = "stt") -> bool:
        """Record one turn's detected language; switch after enough consecutive detections.

        Called once per caller turn. Returns True when this detection switched the language.
        """
        self._turns += 1
        if code is None or code not in self.supported:
            return False
        self.history.append(Detection(code, time.time(), source))
        if code == self.current:
            self._candidate, self._streak = None, 0
            return False
        if code == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = code, 1
        if self._streak >= self.switch_threshold and self._turns >= self.min_turns_before_switch:
            self._candidate, self._streak = None, 0
            return self._switch_to(code, "auto")
        return False

    def _switch_to(self, code: str, reason: str) -> bool:
        if code == self.current:
            return False
        self.switches.append({"from": self.current, "to": code, "reason": reason, "at": time.time(),
                              "turn": self._turns})
        self.current = code
        return True

    def ensure_consistency(self, text: str) -> bool:
        """True when `text` is written in the current language's script (an LLM may drift)."""
        script = dominant_script(text)
        return script is None or script == self.info.script

    def get_switch_status(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "candidate": self._candidate,
            "consecutive": self._streak,
            "threshold": self.switch_threshold,
            "turns": self._turns,
            "min_turns_before_switch": self.min_turns_before_switch,
            "history": [d.language for d in self.history],
            "switches": list(self.switches),
        }
