"""The HTTP/WebSocket server: one FastAPI app; telephony and admin routes come from their modules."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from loguru import logger

from sutradhar.config import Settings, load_settings
from sutradhar.services import Services, build_services


def create_app(settings: Settings | None = None, services: Services | None = None,
               with_operations: bool = True) -> FastAPI:
    """The app. Pass `services` to run with prepared engines (tests, benchmarks); with_operations
    starts the call store, metrics, shared state and health monitor (operations.start)."""
    settings = settings or (services.settings if services else load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        svc = services or build_services(settings)
        app.state.services = svc
        await svc.warm_up()
        # Everything loaded so far (modules, models, settings) lives as long as the process: move
        # it out of the collector's reach, so full collections during calls stay short (the load
        # benchmark measured 50-60 ms event-loop stalls at 100-300 calls without this).
        gc.collect()
        gc.freeze()
        if with_operations:
            from sutradhar import operations

            await operations.start(svc)
        logger.bind(stage="server").info(
            "ready stt={} llm={} tts={}", ",".join(p.name for p in svc.router.providers("stt")),
            ",".join(p.name for p in svc.router.providers("llm")),
            ",".join(p.name for p in svc.router.providers("tts")))
        _warn_open_endpoints(svc.settings)
        try:
            yield
        finally:
            if services is None:
                await svc.aclose()
            else:
                await svc.close_extras()

    app = FastAPI(title="Sutradhar", version="0.1.0", lifespan=lifespan)
    _include_routes(app)
    return app


def _warn_open_endpoints(settings: Settings) -> None:
    """Say at start which doors are open, so an operator does not find out from an incident."""
    log = logger.bind(stage="security")
    if not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: Twilio webhooks and media streams are not signature-checked")
    if not settings.admin_token:
        log.warning("ADMIN_TOKEN is not set: /status, /calls and live-call summaries are open to anyone")
    if not settings.browser_token:
        log.warning("BROWSER_TOKEN is not set: the browser talk page and its socket are open to anyone")


def _include_routes(app: FastAPI) -> None:
    from sutradhar import admin
    from sutradhar.telephony import routes

    app.include_router(admin.router)
    app.include_router(routes.router)
