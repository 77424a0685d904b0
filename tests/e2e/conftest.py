"""End-to-end fixtures: the real server (tests/e2e/harness.py), espeak caller audio
(tests/e2e/fixtures.py), the loopback cloud fakes, and a capture of everything logged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests import fakes
from tests.e2e.harness import LogCapture


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    with LogCapture() as capture:
        yield capture


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch) -> None:
    # Settings read `.env` and default DATA_DIR from the working directory: keep each test's own.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def fake_sarvam() -> AsyncIterator[object]:
    async with fakes.FakeSarvam() as fake:
        yield fake


@pytest.fixture
async def fake_openai() -> AsyncIterator[object]:
    async with fakes.FakeOpenAI() as fake:
        yield fake
