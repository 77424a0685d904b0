"""Pytest fixtures that start the fake cloud servers on 127.0.0.1 for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.sarvam_server import FakeSarvam


@pytest.fixture
async def fake_sarvam() -> AsyncIterator[FakeSarvam]:
    async with FakeSarvam() as fake:
        yield fake


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
