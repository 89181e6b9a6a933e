"""The API token and the middleware that requires it on every request.

One token per home, created on first use in a 0600 file. Programs send it as
``Authorization: Bearer <token>``; a browser opens the URL ``autodo serve`` prints once
(``/?token=…``), which sets an HttpOnly, SameSite=Strict cookie and redirects to the clean URL.
A cookie-authenticated request that changes something must come from the server's own origin
(403 otherwise), so another site cannot make the person's browser act on the board.

Without a token (``--no-auth``, allowed only on a loopback address) requests must still name a
loopback host, so a web page cannot reach the server through DNS rebinding.

Every refusal goes to the audit log with the method, path and client address, and which kinds of
credential came (never their values); at most ``REFUSALS_AUDITED_PER_MINUTE`` a minute, so a flood
of bad tokens cannot flood the store (the next record counts the ones left out).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from autodo.desk import Desk
from autodo.policy import audit
from autodo.server.problems import problem_document

TOKEN_FILE = "api-token"
COOKIE = "autodo_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSALS_AUDITED_PER_MINUTE = 60


def load_or_create_token(home: Path) -> str:
    """The home's API token; the first call creates it (readable by the owner only)."""
    path = home / TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class TokenAuth:
    """ASGI middleware: every HTTP request carries the token, or gets 401 with no detail."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.refusals = _RefusalAudit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self.refusals.record(scope, headers, refusal[0], refusal[1])
            await send_problem(send, *refusal)
        elif self.token is not None and scope["method"] == "GET" and self._matches(_query_token(scope)):
            await self._log_in(scope, send)
        else:
            await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        if self.token is None:
            if not is_loopback(_hostname(headers.get("host", ""))):
                return 403, "forbidden", "this server only answers requests addressed to a loopback host"
            return None
        bearer, cookie = _bearer(headers), _cookie(headers)
        if self._matches(_query_token(scope)) and scope["method"] == "GET":
            return None  # the login link: _log_in turns it into a cookie
        if not (self._matches(bearer) or self._matches(cookie)):
            return 401, "unauthorized", "a valid token is required: send Authorization: Bearer <token>"
        if not self._matches(bearer) and scope["method"] not in SAFE_METHODS and _cross_origin(headers):
            return 403, "forbidden", "a cross-site request was refused"
        return None

    def _matches(self, candidate: str | None) -> bool:
        assert self.token is not None
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token)

    async def _log_in(self, scope: Scope, send: Send) -> None:
        """Swap the token in the URL for a cookie and redirect to the same page without it."""
        query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "token"]
        location = scope["path"] + (f"?{urlencode(query)}" if query else "")
        assert self.token is not None
        cookie = f"{COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class _RefusalAudit:
    """Records refused requests in the audit log, at most ``REFUSALS_AUDITED_PER_MINUTE`` a minute."""

    def __init__(self) -> None:
        self.window_started = -60.0
        self.recorded = 0
        self.left_out = 0

    async def record(self, scope: Scope, headers: dict[str, str], status: int, code: str) -> None:
        desk = getattr(getattr(scope.get("app"), "state", None), "desk", None)  # create_app keeps it there
        if not isinstance(desk, Desk) or not self._admit():
            return
        client = scope.get("client")
        details = {
            "status": status, "code": code, "method": scope["method"], "path": scope["path"],
            "client": f"{client[0]}:{client[1]}" if client else "unknown", "presented": _presented(scope, headers),
            "left_out_before": self.left_out,
        }  # fmt: skip
        self.left_out = 0
        await anyio.to_thread.run_sync(_record_refusal, desk, details)

    def _admit(self) -> bool:
        started = time.monotonic()
        if started - self.window_started >= 60:
            self.window_started, self.recorded = started, 0
        if self.recorded >= REFUSALS_AUDITED_PER_MINUTE:
            self.left_out += 1
            return False
        self.recorded += 1
        return True


def _record_refusal(desk: Desk, details: dict[str, object]) -> None:
    target = f"{details['method']} {details['path']}"
    with desk.engine.begin() as conn:
        audit.record(
            conn, "api.refused", actor=f"client:{details['client']}", decision="deny", target=target, details=details
        )


def _presented(scope: Scope, headers: dict[str, str]) -> list[str]:
    """Which kinds of credential the request carried: names only, never values."""
    kinds = {"authorization": "authorization" in headers, "cookie": _cookie(headers) is not None}
    kinds["query"] = _query_token(scope) is not None
    return [kind for kind, present in kinds.items() if present]


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is simply no cookie
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _query_token(scope: Scope) -> str | None:
    return dict(parse_qsl(scope.get("query_string", b"").decode(errors="replace"))).get("token")


def _hostname(host: str) -> str:
    return urlsplit(f"//{host}").hostname or host


def _cross_origin(headers: dict[str, str]) -> bool:
    """A browser names the page's origin on unsafe requests; it must be this server."""
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")
    return urlsplit(origin).netloc != headers.get("host")


async def send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(problem_document(status, code, detail)).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="autodo"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
