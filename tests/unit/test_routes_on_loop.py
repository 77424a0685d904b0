"""Every route and every dependency runs on the event loop, none on a worker thread.

FastAPI runs a plain-function endpoint or dependency through anyio's thread pool: a thread hop
per request, and on a worker's first such request an import of anyio's thread machinery on the
event loop while its calls are live (py-spy caught it at a load benchmark's first call summary).
The app is read from `create_app`, so a new route or guard is checked as soon as it exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute

from sutradhar.server.app import create_app
from tests.support.server import make_settings


def _calls(dependant: Dependant) -> Iterator[object]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _routes(routes: list[BaseRoute]) -> Iterator[APIRoute | APIWebSocketRoute]:
    """The app's routes, through the routers it includes (FastAPI keeps those as branches)."""
    for route in routes:
        if isinstance(route, (APIRoute, APIWebSocketRoute)):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from _routes(router.routes)


def _is_coroutine(call: object) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None))


def test_no_route_or_dependency_needs_a_worker_thread() -> None:
    app = create_app(make_settings())
    routes = list(_routes(app.routes))
    assert len(routes) > 20  # the app's own routes were found, not an empty list passed vacuously
    sync = []
    for route in routes:
        if not _is_coroutine(route.endpoint):
            sync.append(f"{route.path}: endpoint {route.endpoint.__qualname__}")
        for call in _calls(route.dependant):
            if not _is_coroutine(call):
                sync.append(f"{route.path}: dependency {getattr(call, '__qualname__', call)}")
    assert not sync, "plain functions FastAPI would run on a worker thread:\n" + "\n".join(sorted(set(sync)))
