"""The Redis client every shared structure uses, and the one way they call it: fail fast, log once
a minute, fall back to this worker's own copy (a `FAILED` result) instead of stalling a call."""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

log = logger.bind(stage="shared_state")
PREFIX = "sutradhar"  # every key this project writes starts with it


def connect_redis(url: str) -> Any:
    """An asyncio Redis client that gives up fast: shared state must not stall a call."""
    from redis.asyncio import Redis

    return Redis.from_url(url, decode_responses=True, socket_timeout=1.0,
                          socket_connect_timeout=1.0, health_check_interval=30)


class RedisBacked:
    """Runs a Redis operation, logs a failure (once per minute) and returns None instead."""

    def __init__(self, redis: Any | None) -> None:
        self.redis = redis
        self._last_warning = 0.0

    async def _try(self, op: str, coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:  # noqa: BLE001 - redis errors, timeouts, closed sockets
            now = time.monotonic()
            if now - self._last_warning > 60:
                self._last_warning = now
                log.warning("redis {} failed, using this worker's copy: {}: {}", op,
                            type(exc).__name__, exc)
            return FAILED


FAILED = object()
