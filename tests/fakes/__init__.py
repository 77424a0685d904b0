"""Loopback fakes of the cloud providers, reusable by any suite.

    from tests.fakes import Fault, FakeOpenAI, FakeSarvam

Each is an async context manager giving `.base_url` (and `.ws_url`); see each module for the script.
Fixtures `fake_sarvam` and `fake_openai` are in `tests/fakes/fixtures.py`; a conftest enables them
by importing them (`from tests.fakes.fixtures import fake_sarvam`).
"""

from tests.fakes._server import Fault, ToolCalls
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.sarvam_server import FakeSarvam

__all__ = ["Fault", "FakeOpenAI", "FakeSarvam", "ToolCalls"]
