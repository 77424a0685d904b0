"""Sutradhar: a real-time voice-agent orchestrator."""
