"""Single-use stream tokens: the signed answer webhook issues one per call, the media socket spends it.

A token names the carrier and the call it was issued for and lives `ttl_s`. With Redis every worker
shares them (`SET NX EX` to issue, `GETDEL` to spend), so a token issued by the worker that answered
the webhook is accepted once by whichever worker the stream reaches. Without Redis, or when Redis
fails, this worker's own copy answers; that can refuse a stream that landed on another worker, never
accept a token twice on one.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from sutradhar.ops.redis_client import FAILED, PREFIX, RedisBacked


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a token was issued for."""

    carrier: str
    call_id: str


class StreamTokens(RedisBacked):
    def __init__(self, redis: Any | None = None, *, ttl_s: float = 60.0, limit: int = 20_000) -> None:
        super().__init__(redis)
        self.ttl_s = ttl_s
        self.limit = limit
        # token -> (grant, deadline, whether Redis holds it too)
        self._local: dict[str, tuple[StreamGrant, float, bool]] = {}

    def _key(self, token: str) -> str:
        return f"{PREFIX}:stream-token:{token}"

    async def issue(self, carrier: str, call_id: str) -> str:
        """A new token for this call's stream. Hex only: Plivo's extraHeaders allow [A-Za-z0-9]."""
        token = secrets.token_hex(16)
        grant = StreamGrant(carrier, call_id)
        self._expire()
        if len(self._local) >= self.limit:  # a flood of webhooks must not grow memory without bound
            self._local.pop(next(iter(self._local)))
        shared = False
        if self.redis is not None:
            stored = await self._try("token issue", self.redis.set(
                self._key(token), json.dumps(asdict(grant)), nx=True, ex=max(1, round(self.ttl_s))))
            shared = stored is not FAILED
        self._local[token] = (grant, time.monotonic() + self.ttl_s, shared)
        return token

    async def spend(self, token: str) -> StreamGrant | None:
        """The grant for `token`, at most once across every worker; None when unknown, used or expired."""
        if not token:
            return None
        local = self._local.pop(token, None)
        if self.redis is not None:
            raw = await self._try("token spend", self.redis.getdel(self._key(token)))
            if raw is FAILED:  # Redis down: this worker's copy (it may have been issued here)
                return self._valid(local)
            if raw:
                return StreamGrant(**json.loads(raw))
            # Redis never had it (it failed at issue): only then may this worker's copy answer.
            return self._valid(local) if local is not None and not local[2] else None
        return self._valid(local)

    @staticmethod
    def _valid(local: tuple[StreamGrant, float, bool] | None) -> StreamGrant | None:
        if local is None or local[1] < time.monotonic():
            return None
        return local[0]

    def _expire(self) -> None:
        now = time.monotonic()
        while self._local:
            token, (_, deadline, _) = next(iter(self._local.items()))
            if deadline >= now:
                break
            del self._local[token]
