"""The HTTP/WebSocket server: one FastAPI app with the carriers' routes and the admin API.

The lifespan builds the shared services once (`open_services`), warms the engines up, and closes
everything on the way down.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from loguru import logger

from sutradhar.campaigns.runner import CampaignRunner
from sutradhar.config import Settings, load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.ops.prometheus import Telemetry
from sutradhar.server import admin, console, http_errors
from sutradhar.server import campaigns as campaigns_api
from sutradhar.server.public_host import PublicHostOnly
from sutradhar.services import open_services
from sutradhar.store import Recorder
from sutradhar.telephony.browser import webhooks as browser
from sutradhar.telephony.exotel import webhooks as exotel
from sutradhar.telephony.plivo import webhooks as plivo
from sutradhar.telephony.twilio import webhooks as twilio


def create_app(settings: Settings | None = None, *, engines: EngineSet | None = None,
               records: bool = True, recorder: Recorder | None = None,
               telemetry: Telemetry | None = None) -> FastAPI:
    """The app. `engines` runs it with prepared engines (tests, benchmarks); `records=False`
    keeps no call store; `recorder` receives the call records instead of the store."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await open_services(settings, engines, records=records, recorder=recorder,
                                       telemetry=telemetry)
        app.state.services = services
        campaigns = CampaignRunner(services) if services.store is not None else None
        app.state.campaigns = campaigns
        await services.warm_up()
        if campaigns is not None:  # after warm-up: an answered call must find the engines ready
            await campaigns.start()  # campaigns a stopped or crashed process left running resume
        # Starlette serves files (recordings, console assets) from a worker thread; the first such
        # hop imports anyio's thread machinery on the event loop, a stall of its own mid-calls.
        await anyio.to_thread.run_sync(int)
        # Everything loaded so far (modules, models, settings) lives as long as the process: move
        # it out of the collector's reach, so full collections during calls stay short (the load
        # benchmark measured 50-60 ms event-loop stalls at 100-300 calls without this).
        gc.collect()
        gc.freeze()
        logger.bind(stage="server").info(
            "ready stt={} llm={} tts={}", *(",".join(p.name for p in services.router.providers(stage))
                                             for stage in ("stt", "llm", "tts")))
        _warn_open_endpoints(settings)
        try:
            yield
        finally:
            if campaigns is not None:
                await campaigns.aclose()
            await services.aclose()

    app = FastAPI(title="Sutradhar", version="0.1.0", lifespan=lifespan)
    http_errors.install(app)
    for module in (admin, campaigns_api, console, twilio, exotel, plivo, browser):
        app.include_router(module.router)
    app.add_middleware(PublicHostOnly, settings=settings)
    return app


def _warn_open_endpoints(settings: Settings) -> None:
    """Say at start which doors are open, so an operator does not find out from an incident."""
    log = logger.bind(stage="security")
    if not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: Twilio webhooks and media streams are not signature-checked")
    if not settings.plivo_auth_token:
        log.warning("PLIVO_AUTH_TOKEN is not set: Plivo webhooks are not signature-checked")
    if not settings.admin_token:
        log.warning("ADMIN_TOKEN is not set: /status, /calls and live-call summaries are open to anyone")
    if not settings.browser_token:
        log.warning("BROWSER_TOKEN is not set: the browser talk page and its socket are open to anyone")
    if not settings.public_url:
        log.warning("PUBLIC_URL is not set: carrier routes answer any Host header")
    if settings.stream_tokens == "off" and settings.twilio_auth_token:
        log.warning("STREAM_TOKENS=off: a replayed Twilio stream handshake opens a call")
