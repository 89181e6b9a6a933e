"""The ASGI app of ``autodo serve``: web board, REST API with live streams, Symphony's API, MCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from autodo.config import Settings
from autodo.desk import Desk
from autodo.server import api, live, radar, symphony
from autodo.server.auth import TokenAuth
from autodo.server.limits import BodyLimit
from autodo.server.problems import PROBLEM_TYPE, Problem, install_problem_handlers
from autodo.server.webhooks import WebhookDispatcher, load_webhooks

# Every operation may answer with these; each is a problem document.
ERROR_RESPONSES = {
    "400": "The request is not valid for this resource (the detail says what to fix).",
    "401": "No valid token.",
    "403": "Refused (cross-site request, or a non-loopback host without a token).",
    "404": "No such task or inbox item.",
    "409": "The task or item is not in a state that allows this.",
    "422": "The request does not match the schema.",
    "503": "A model or the run engine is not available.",
}


def create_app(settings: Settings, *, token: str | None) -> FastAPI:
    """The whole server; ``token=None`` serves without authentication (loopback only)."""
    desk = Desk(settings)
    app = FastAPI(
        title="autodo",
        summary="The to-do list that does itself: tasks, lanes, runs, inbox and live events.",
        version="1",
        lifespan=_lifespan,
    )
    app.state.desk = desk
    app.state.refresh_hooks = []
    app.state.webhooks = load_webhooks(settings.home)  # a mistake in webhooks.toml stops the server here
    install_problem_handlers(app)
    app.include_router(api.router)
    app.include_router(live.router)
    app.include_router(radar.router)
    _add_web(app)
    _add_mcp(app, desk)
    app.include_router(symphony.router)  # last: its /api/v1/{identifier} catches what is left
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit)
    app.add_middleware(TokenAuth, token=token)  # added last: runs first, before any body is read
    return app


def _add_web(app: FastAPI) -> None:
    from autodo.server import web

    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")


def _add_mcp(app: FastAPI, desk: Desk) -> None:
    from autodo.server.mcp import http_app

    # TokenAuth checks the token, and the Host header when serving without one (DNS rebinding).
    app.state.mcp = http_app(desk, hosts=None)
    app.router.add_route("/mcp", app.state.mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with anyio.create_task_group() as group, app.state.mcp.router.lifespan_context(app.state.mcp):
        if app.state.webhooks:
            await group.start(WebhookDispatcher(app.state.desk.engine, app.state.webhooks).run)
        yield
        group.cancel_scope.cancel()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error documented as a problem document."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path in schema["paths"].values():
        for operation in path.values():
            _document_errors(operation["responses"])
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _document_errors(responses: dict[str, Any]) -> None:
    problem = {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status, description in ERROR_RESPONSES.items():
        responses[status] = {
            "description": responses.get(status, {}).get("description", description),
            "content": problem,
        }
