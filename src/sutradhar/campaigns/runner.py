"""CampaignRunner: the asyncio service in each server process that works through the campaigns.

One loop per process. Each tick, for every running or paused campaign: settle the in-flight
contacts from their call records (status callbacks), then, if it is running, claim due contacts up
to its concurrency and dial each in a task of its own, then mark it completed when nothing is left.
A status callback committed in this process wakes the loop at once; otherwise it ticks every
CAMPAIGN_POLL_S (callbacks that landed on another worker). Started with the server, so campaigns
left running by a stopped or crashed process resume by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib

from sutradhar.campaigns.spec import CampaignSpec
from sutradhar.campaigns.store import CampaignStore, Claim, Rules, log_for
from sutradhar.services import Services
from sutradhar.store import CallStore
from sutradhar.telephony.dialing import OutboundError
from sutradhar.telephony.outbound import dialer_for, place_call

IDLE_POLL_S = 30.0  # with no open campaign
CONFIG_ERRORS = (400, 409)  # the carrier cannot be used at all: the campaign pauses with the reason
INVALID = 422  # this number or language: the contact is `invalid`, the rest go on


class CampaignRunner:
    def __init__(self, services: Services) -> None:
        if services.store is None:
            raise ValueError("campaigns need the call store")
        s = services.settings
        self.services = services
        self.records: CallStore = services.store  # its status callbacks wake the loop
        self.store = CampaignStore(services.store, s.campaign_dnc_file)
        self.poll_s = s.campaign_poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dials: set[asyncio.Task[None]] = set()
        self._dialing: set[int] = set()  # contacts whose dial here awaits the carrier's answer

    async def start(self) -> None:
        self.records.status_listeners.append(self._on_status)
        self._task = asyncio.create_task(self._loop(), name="campaign-runner")

    async def aclose(self) -> None:
        """Stop claiming; dials already asking the carrier finish (their call ids must be kept)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._dials:
            await asyncio.wait(set(self._dials), timeout=15)
        if self._on_status in self.records.status_listeners:
            self.records.status_listeners.remove(self._on_status)

    def wake(self) -> None:
        self._wake.set()

    def _on_status(self, _call_id: str, _status: str) -> None:
        self._wake.set()

    # --- the admin API's operations ---

    async def create(self, spec: CampaignSpec) -> str:
        """Validate against the settings, store the campaign and start on it. ValueError: why not."""
        s = self.services.settings
        problems = [f"contact {n}: language {c.language} is not in LANGUAGES"
                    for n, c in enumerate(spec.contacts, start=1) if c.language and c.language not in s.languages]
        if spec.language and spec.language not in s.languages:
            problems.insert(0, f"language {spec.language!r} is not in LANGUAGES ({', '.join(s.languages)})")
        problems += [f"prompts.{code}: not in LANGUAGES" for code in spec.prompts if code not in s.languages]
        try:
            problems += dialer_for(s, spec.carrier).problems()
        except OutboundError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems[:20]))
        rules = Rules(concurrency=spec.concurrency or s.campaign_concurrency,
                      max_attempts=spec.max_attempts or s.campaign_max_attempts,
                      retry_delay_s=s.campaign_retry_delay_s if spec.retry_delay_s is None else spec.retry_delay_s,
                      retry_backoff=spec.retry_backoff or s.campaign_retry_backoff,
                      calling_hours=spec.calling_hours or s.campaign_calling_hours,
                      timezone=spec.timezone or s.campaign_timezone)
        campaign_id = await self.store.create(spec, rules, spec.carrier, spec.language)
        self.wake()
        return campaign_id

    async def pause(self, campaign_id: str) -> bool:
        return await self.store.set_status(campaign_id, "paused", ("running",))

    async def resume(self, campaign_id: str) -> bool:
        resumed = await self.store.set_status(campaign_id, "running", ("paused",))
        self.wake()
        return resumed

    # --- the loop ---

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            busy = True
            try:
                busy = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be back next tick
                log_for("-").error("campaign tick failed: {}: {}", type(exc).__name__, exc)
            # No open campaign: a create, resume or status callback wakes the loop; the slow
            # tick only notices one another worker left behind.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s if busy else max(self.poll_s, IDLE_POLL_S)):
                    await self._wake.wait()  # no wait_for: it would make a task per tick

    async def tick(self) -> bool:
        """One pass over the open campaigns; False when there is none."""
        s = self.services.settings
        campaigns = await self.store.open_campaigns()
        for campaign_id, status in campaigns:
            await self.store.settle(campaign_id, call_timeout_s=s.campaign_call_timeout_s,
                                    dead_after_s=s.worker_dead_after_s, dialing_here=self._dialing)
            # Full or draining: dial nothing rather than claim numbers only to hand them back.
            if status == "running" and not self.services.calls.at_capacity:
                while (claim := await self.store.claim(campaign_id)) is not None:
                    self._dialing.add(claim.contact_id)
                    task = asyncio.create_task(self._dial(claim), name=f"campaign-dial-{campaign_id}")
                    self._dials.add(task)
                    task.add_done_callback(self._dials.discard)
                await self.store.finish_if_done(campaign_id)
        return bool(campaigns)

    async def _dial(self, claim: Claim) -> None:
        try:
            await self._place(claim)
        except Exception as exc:  # noqa: BLE001 - the store failed us: the next settle makes it unknown
            log_for(claim.campaign_id).error("campaign {} contact {}: could not record the attempt: {}: {}",
                                             claim.campaign_id, claim.seq, type(exc).__name__, exc)
        finally:
            self._dialing.discard(claim.contact_id)
        self.wake()

    async def _place(self, claim: Claim) -> None:
        log = log_for(claim.campaign_id)
        try:
            placed = await place_call(self.services, claim.number, claim.language, claim.carrier)
        except OutboundError as exc:
            await self._not_placed(claim, exc)
        except Exception as exc:  # noqa: BLE001 - we cannot tell whether the carrier got the request
            await self.store.not_placed(claim, f"{type(exc).__name__}: {exc}", maybe_placed=True)
            log.error("campaign {} contact {} unknown: dialling raised {}: {}", claim.campaign_id,
                      claim.seq, type(exc).__name__, exc)
        else:
            await self.store.placed(claim, placed["call_id"])
            log_for(claim.campaign_id, placed["call_id"]).info(
                "campaign {} contact {} dialled attempt {} carrier={}", claim.campaign_id, claim.seq,
                claim.attempt, claim.carrier)

    async def _not_placed(self, claim: Claim, exc: OutboundError) -> None:
        log = log_for(claim.campaign_id)
        if exc.status == 503:  # this worker is full or draining: the number waits, no attempt spent
            await self.store.release(claim, self.poll_s)
            log.warning("campaign {} contact {} not dialled: {}", claim.campaign_id, claim.seq, exc)
        elif exc.status in CONFIG_ERRORS:
            await self.store.release(claim, self.poll_s)
            await self.store.pause_with_error(claim.campaign_id, str(exc))
        elif exc.status == INVALID:
            await self.store.invalid(claim, str(exc))
            log.warning("campaign {} contact {} invalid: {}", claim.campaign_id, claim.seq, exc)
        else:
            status = await self.store.not_placed(claim, str(exc), maybe_placed=exc.maybe_placed)
            log.warning("campaign {} contact {} {}: {}", claim.campaign_id, claim.seq, status, exc)
