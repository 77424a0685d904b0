"""Shared fixtures: a real running server with scripted engines, and espeak caller audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import phone_wav, speech_pcm  # noqa: F401  (re-exported for other suites)
from tests.support.serial import turn
from tests.support.server import (  # noqa: F401
    RecordingRecorder,
    live_server,
    make_settings,
    scripted_engines,
)


@pytest.fixture
def recorder() -> RecordingRecorder:
    return RecordingRecorder()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Serial tests last (a stable sort): each waits for the tests in flight on the other workers,
    # which at the end of the run are short unit tests, not a 100 s scenario with the pool idle.
    items.sort(key=lambda item: item.get_closest_marker("serial") is not None)


@pytest.fixture(scope="session")
def serial_lock_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A directory every xdist worker of this run shares (the parent of the workers' base temps)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture(autouse=True)
def _serial_turn(request: pytest.FixtureRequest, serial_lock_dir: Path) -> Iterator[None]:
    # Timing assertions hold only when no other worker's test competes for the 2 cores.
    with turn(serial_lock_dir, alone=request.node.get_closest_marker("serial") is not None):
        yield
