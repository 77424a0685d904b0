"""Shared fixtures: a real running server with scripted engines, and espeak caller audio."""

from __future__ import annotations

import pytest

from tests.support.audio import phone_wav, speech_pcm  # noqa: F401  (re-exported for other suites)
from tests.support.server import (  # noqa: F401
    RecordingRecorder,
    live_server,
    make_settings,
    scripted_engines,
)


@pytest.fixture
def recorder() -> RecordingRecorder:
    return RecordingRecorder()
