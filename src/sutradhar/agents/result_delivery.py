"""CallResults: an agent's post-call results made after each call and sent to its webhook.

`submit` returns at once: the results are made in a background task (the call's end never waits
for an LLM or a webhook), stored with the call record, and, when the agent has a webhook, sent
right away. A webhook that is down leaves the row `pending` in the store; a periodic job on every
worker retries due rows with exponential backoff, also after a restart, until it answers 2xx or
the attempts run out (`failed`, still stored). Each body is signed:

    X-Sutradhar-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret_env value>
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
from loguru import logger

from sutradhar.agents.results import CallTranscript, ResultsSpec, compute_results
from sutradhar.engines.fallback import TaskRouter
from sutradhar.ops.periodic import Periodic
from sutradhar.ops.prometheus import Telemetry
from sutradhar.store.calls import CallStore, utcnow

SIGNATURE_HEADER = "X-Sutradhar-Signature"
LEASE_S = 60.0  # a claimed row is not sent by another worker for this long


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class CallResults:
    def __init__(self, spec: ResultsSpec, agent: str, router: TaskRouter | None, store: CallStore | None,
                 *, retry_interval_s: float = 30.0, backoff_s: float = 10.0, max_backoff_s: float = 3600.0,
                 max_attempts: int = 12, secret: str | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self.spec, self.agent, self.router, self.store = spec, agent, router, store
        self.backoff_s, self.max_backoff_s, self.max_attempts = backoff_s, max_backoff_s, max_attempts
        self.secret = secret
        self.telemetry = telemetry
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending = asyncio.Lock()  # one round of sends at a time; closing waits for it
        self._client: httpx.AsyncClient | None = None
        self._retry = Periodic("call-results-webhook", self.deliver_due, retry_interval_s) \
            if spec.webhook is not None and store is not None else None

    def start(self) -> None:
        if self._retry is not None:
            self._retry.start()  # its first run sends what an earlier process left pending

    def submit(self, transcript: CallTranscript) -> None:
        """Make, store and send the results of an ended call, in the background."""
        task = asyncio.create_task(self._make(transcript), name=f"results-{transcript.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _make(self, transcript: CallTranscript) -> None:
        log = logger.bind(call_id=transcript.call_id, stage="results")
        try:
            results = await compute_results(self.spec, transcript, self.router)
            results["payload"] = {"call_id": transcript.call_id, "agent": self.agent,
                                  "language": transcript.language, "end_reason": transcript.end_reason,
                                  "state": transcript.state, "summary": results["summary"],
                                  "extracted": results["extracted"], "source": results["source"]}
            url = self.spec.webhook.url if self.spec.webhook is not None else None
            if self.store is None:
                log.warning("results made but not stored: no call store (a failed send is not retried)")
                if url:
                    await self._send({"call_id": transcript.call_id, "url": url,
                                      "payload": results["payload"], "attempts": 0}, store=False)
                return
            await self.store.call_results(transcript.call_id, results, url)
            if url:
                await self.store.flush()  # on record first: a failed send is then only a retry
                await self.deliver_due()
        except Exception as exc:  # noqa: BLE001 - results are worth less than the next call
            log.opt(exception=exc).error("post-call results failed: {}", exc)

    async def deliver_due(self) -> int:
        """Send every due pending row once; how many were sent."""
        if self.store is None:
            return 0
        sent = 0
        async with self._sending:
            for row in await self.store.claim_due_results(LEASE_S):
                sent += await self._send(row)
        return sent

    async def _send(self, row: dict[str, Any], store: bool = True) -> bool:
        log = logger.bind(call_id=row["call_id"], stage="results")
        assert self.spec.webhook is not None
        body = body_of(row["payload"] or {})
        headers = {"Content-Type": "application/json", "X-Sutradhar-Call-Id": row["call_id"],
                   "X-Sutradhar-Attempt": str(row["attempts"] + 1)}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.spec.webhook.timeout_s)
        error: str | None = None
        try:
            response = await self._client.post(row["url"], content=body, headers=headers)
            if response.status_code >= 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempts = row["attempts"] + 1
        next_at = None
        if error is not None and attempts < self.max_attempts:
            delay = min(self.backoff_s * 2 ** (attempts - 1), self.max_backoff_s)
            next_at = utcnow() + timedelta(seconds=delay)
        if self.telemetry is not None:
            self.telemetry.results_delivery("sent" if error is None else "retry" if next_at else "failed")
        if error is None:
            log.info("results webhook delivered attempt={}", attempts)
        elif next_at is None:
            log.error("results webhook failed for good attempts={} error={}", attempts, error)
        else:
            log.warning("results webhook failed attempt={} error={} retry_at={}", attempts, error,
                        next_at.isoformat())
        if store and self.store is not None:
            await self.store.record_delivery(row["call_id"], error, next_at)
        return error is None

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for the results being made (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self) -> None:
        await self.drain()
        async with self._sending:  # a send under way is recorded before the retries stop
            if self._retry is not None:
                await self._retry.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
