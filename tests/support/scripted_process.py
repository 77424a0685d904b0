"""The real server process (`sutradhar.server.runner`, the same code `sutradhar serve` runs, with its
signal handling) on scripted engines, for tests that send it real signals or kill it.

    python -m tests.support.scripted_process        # settings from the environment

SCRIPTED_REPLY sets the LLM's reply (a long one keeps the agent talking for seconds);
SCRIPTED_TTS_MS_PER_CHAR sets how much audio each character makes.
"""

from __future__ import annotations

import os

from sutradhar.config import load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.ops.logs import setup_logging
from sutradhar.server.runner import serve
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS


def main() -> None:
    settings = load_settings(stt=["scripted"], llm=["scripted"], tts=["scripted"])
    setup_logging(settings)
    reply = os.environ.get("SCRIPTED_REPLY", "Sure. I can help with that.")
    ms_per_char = float(os.environ.get("SCRIPTED_TTS_MS_PER_CHAR", "25"))
    engines = EngineSet([ScriptedSTT(script=("hello there",))], [ScriptedLLM(replies=(reply,))],
                        [ScriptedTTS(ms_per_char=ms_per_char, chunk_ms=100)])
    serve(settings, engines=engines)


if __name__ == "__main__":
    main()
