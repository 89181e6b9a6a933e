"""Errors as RFC 9457 problem documents (``application/problem+json``) with a stable code.

Each document also carries Symphony's error envelope (``{"error": {"code", "message"}}``), so
clients written for either shape read autodo's errors. Unexpected errors say nothing about the
server's insides; the log has the details.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from autodo.errors import AutodoError

PROBLEM_TYPE = "application/problem+json"
CODES_BY_STATUS = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}
log = logging.getLogger(__name__)


class ErrorEnvelope(BaseModel):
    code: str
    message: str


class Problem(BaseModel):
    """An error: what went wrong (``detail``) and a code that never changes (``code``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    error: ErrorEnvelope
    errors: list[dict[str, Any]] | None = None  # for invalid requests: each field that was wrong


def problem_document(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:autodo:error:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "error": {"code": code, "message": detail},
        **extra,
    }


def problem_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_document(status, code, detail, **extra), status_code=status, media_type=PROBLEM_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AutodoError, _autodo_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def _autodo_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AutodoError)
    return problem_response(error.status, error.code, error.message)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [{"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]} for e in error.errors()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, "invalid_request", f"the request is not valid: {summary}", errors=errors)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = CODES_BY_STATUS.get(error.status_code, "http_error")
    response = problem_response(error.status_code, code, str(error.detail))
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return problem_response(500, "internal_error", "an unexpected error happened; the server log has the details")
