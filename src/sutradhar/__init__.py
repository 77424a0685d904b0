"""Sutradhar: a real-time voice-agent orchestrator (STT -> LLM -> TTS) for live phone calls."""

from sutradhar.context import ContextManager
from sutradhar.language import LANGUAGES, LanguageCoordinator
from sutradhar.metrics import MetricsCollector
from sutradhar.orchestrator import AgentOrchestrator, Utterance
from sutradhar.resilience import CircuitBreaker, RetryPolicy
from sutradhar.routing import TaskRouter

__all__ = [
    "LANGUAGES",
    "AgentOrchestrator",
    "CircuitBreaker",
    "ContextManager",
    "LanguageCoordinator",
    "MetricsCollector",
    "RetryPolicy",
    "TaskRouter",
    "Utterance",
]
__version__ = "0.1.0"
