"""Sutradhar: a real-time voice-agent orchestrator (STT -> LLM -> TTS) for live phone calls."""

from sutradhar.agents.tools import Tool, ToolBox, ToolContext, tool
from sutradhar.engines.fallback import TaskRouter
from sutradhar.engines.resilience import CircuitBreaker, RetryPolicy
from sutradhar.pipeline.call_language import LanguageCoordinator
from sutradhar.pipeline.context import ContextManager
from sutradhar.pipeline.metrics import MetricsCollector
from sutradhar.pipeline.orchestrator import AgentOrchestrator, Utterance
from sutradhar.text.languages import LANGUAGES

__all__ = [
    "LANGUAGES",
    "AgentOrchestrator",
    "CircuitBreaker",
    "ContextManager",
    "LanguageCoordinator",
    "MetricsCollector",
    "RetryPolicy",
    "TaskRouter",
    "Tool",
    "ToolBox",
    "ToolContext",
    "Utterance",
    "tool",
]
__version__ = "0.1.0"
