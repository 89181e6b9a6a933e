"""Outgoing webhooks: task and inbox changes POSTed to your receivers, signed, retried, in order.

Configuration lives in ``AUTODO_HOME/webhooks.toml`` (no file, no webhooks)::

    [[webhook]]
    url = "https://example.test/hooks/autodo"
    secret = "…"                     # the HMAC-SHA256 key; or secret_env = "NAME" to read it from the environment
    events = ["task.*", "inbox.*"]   # fnmatch patterns over event kinds; this is the default
    timeout = 10                     # seconds per request

Delivery. Each event whose kind matches is POSTed as JSON: ``{"id": <seq>, "kind", "task_id", "run_id",
"data", "at", "task"}``, where ``task`` is the task as it is when the event is sent (null if it is
gone). Headers: ``X-Autodo-Event`` (the kind), ``X-Autodo-Delivery`` (the event number, the same on
every retry), ``X-Autodo-Timestamp`` (unix seconds) and ``X-Autodo-Signature: sha256=<hex>``, the
HMAC-SHA256 under the secret of ``f"{timestamp}.{body}"``. A receiver recomputes it over the raw
body, compares in constant time and refuses timestamps outside a replay window
(:func:`verify_signature` does all three); every attempt is signed afresh, so a retry after a long
backoff still falls inside the window.

Retries. Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
(``stamina``), honouring ``Retry-After`` up to a cap; any other answer that is not 2xx fails at
once. After the last attempt the event is logged and skipped: nothing about webhooks is written to
the event log, which the webhooks themselves read.

Order and durability. Each webhook has its own reader of the event log (an
:class:`~autodo.server.streams.EventTail`), sends one event at a time and keeps its own cursor in
``webhook_cursors`` (keyed by the sha256 of its url), so a dead receiver holds up only itself and a
restart resumes after the last event sent. Delivery is at least once: a crash between a receiver
taking an event and the cursor moving sends that event again, so receivers deduplicate on
``X-Autodo-Delivery``. A new webhook (or a changed url) starts at the head of the log, not at its
first event. Run one dispatcher per store.

Use::

    async with anyio.create_task_group() as group:
        await group.start(WebhookDispatcher(engine, load_webhooks(settings.home)).run)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import sqlalchemy as sa
import stamina
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from autodo.errors import ConfigError, NotFound
from autodo.events import Event, head_seq
from autodo.server.streams import EventTail
from autodo.store import now
from autodo.store.schema import webhook_cursors
from autodo.tasks import board

log = logging.getLogger(__name__)

FILE_NAME = "webhooks.toml"
DEFAULT_EVENTS = ("task.*", "inbox.*")
USER_AGENT = "autodo-webhooks"
RESTART_WAIT = 5.0  # seconds before a webhook's loop starts again after an unexpected error


# --- configuration -------------------------------------------------------------------------------


class WebhookEntry(BaseModel):
    """One ``[[webhook]]`` table as written in ``webhooks.toml``."""

    model_config = ConfigDict(extra="forbid")

    url: str
    secret: SecretStr | None = None
    secret_env: str | None = None
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1)
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL; write e.g. https://example.test/hooks/autodo")
        return url

    @field_validator("events")
    @classmethod
    def _no_blank_patterns(cls, events: list[str]) -> list[str]:
        if not all(pattern.strip() for pattern in events):
            raise ValueError('a blank pattern matches nothing; write kinds or patterns like "task.*"')
        return events

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookEntry:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError('give exactly one of secret = "…" or secret_env = "VARIABLE" (the signing key)')
        if self.secret is not None and not self.secret.get_secret_value():
            raise ValueError("secret is empty; give a long random string that the receiver knows too")
        return self


@dataclass(frozen=True)
class Webhook:
    """A receiver: where to send events, the key to sign them with, and which kinds it wants."""

    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = DEFAULT_EVENTS
    timeout: float = 10.0

    @property
    def key(self) -> str:
        """The webhook's row in ``webhook_cursors``."""
        return hashlib.sha256(self.url.encode()).hexdigest()

    @property
    def name(self) -> str:
        """The url without credentials or query, fit for a log line."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"

    def wants(self, kind: str) -> bool:
        return any(fnmatchcase(kind, pattern) for pattern in self.events)


def load_webhooks(home: Path) -> list[Webhook]:
    """The webhooks in ``home/webhooks.toml``; none when there is no such file."""
    path = home / FILE_NAME
    if not path.exists():
        return []
    tables = _webhook_tables(path, _read_toml(path))
    hooks = [_webhook(f"{path}: webhook {number}", table) for number, table in enumerate(tables, start=1)]
    _refuse_repeated_urls(path, hooks)
    return hooks


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}; fix the line it names") from None


def _webhook_tables(path: Path, raw: dict[str, Any]) -> list[dict[str, Any]]:
    tables = raw.get("webhook", [])
    unknown = sorted(set(raw) - {"webhook"})
    if unknown or not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        extra = f" (unknown keys: {', '.join(unknown)})" if unknown else ""
        raise ConfigError(f"{path}: write each webhook as a [[webhook]] table with a url and a secret{extra}")
    return tables


def _webhook(label: str, table: dict[str, Any]) -> Webhook:
    if isinstance(table.get("url"), str):
        label += f" ({table['url']})"
    try:
        entry = WebhookEntry.model_validate(table)
    except ValidationError as error:
        raise ConfigError(f"{label}: {'; '.join(_problem(e) for e in error.errors())}") from None
    return Webhook(url=entry.url, secret=_secret(label, entry), events=tuple(entry.events), timeout=entry.timeout)


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message += f" (known keys: {', '.join(WebhookEntry.model_fields)})"
    return f"{where}: {message}" if where else message


def _secret(label: str, entry: WebhookEntry) -> str:
    if entry.secret is not None:
        return entry.secret.get_secret_value()
    value = os.environ.get(entry.secret_env or "", "")
    if not value:
        raise ConfigError(
            f"{label}: secret_env names {entry.secret_env}, which is not set; "
            'set it where autodo runs or write secret = "…"'
        )
    return value


def _refuse_repeated_urls(path: Path, hooks: list[Webhook]) -> None:
    # The cursor is keyed by url: two tables with one url would share (and fight over) it.
    first: dict[str, int] = {}
    for number, hook in enumerate(hooks, start=1):
        if hook.url in first:
            raise ConfigError(
                f"{path}: webhook {number} repeats the url of webhook {first[hook.url]}; "
                "put every kind that receiver wants in one table's events"
            )
        first[hook.url] = number


# --- signing -------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Autodo-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    tolerance: float = 300,
    *,
    received_at: float | None = None,
) -> bool:
    """What a receiver checks: the signature matches the raw body and was made within ``tolerance`` seconds."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    # The timestamp is inside the signed message, so a replayed request cannot freshen it.
    if abs((time.time() if received_at is None else received_at) - sent_at) > tolerance:
        return False
    expected = sign(secret, sent_at, body.encode() if isinstance(body, str) else body)
    return hmac.compare_digest(expected.encode(), signature.encode())


# --- cursors -------------------------------------------------------------------------------------


def read_cursor(engine: sa.Engine, hook: Webhook) -> int | None:
    """The last event the webhook was sent (or gave up on); None before it first ran."""
    query = sa.select(webhook_cursors.c.last_seq).where(webhook_cursors.c.key == hook.key)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else int(value)


def start_cursor(engine: sa.Engine, hook: Webhook) -> int:
    """Where the webhook resumes: its cursor, or the head of the log when it is new."""
    cursor = read_cursor(engine, hook)
    if cursor is not None:
        return cursor
    head = head_seq(engine)
    with engine.begin() as conn:
        conn.execute(webhook_cursors.insert().values(key=hook.key, last_seq=head, updated_at=now()))
    return head


def save_cursor(engine: sa.Engine, hook: Webhook, seq: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            webhook_cursors.update().where(webhook_cursors.c.key == hook.key).values(last_seq=seq, updated_at=now())
        )


# --- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one event is pushed at a receiver before it is given up on."""

    attempts: int = 8
    wait_initial: float = 1.0  # seconds; doubled after each failure
    wait_max: float = 60.0
    wait_jitter: float = 1.0
    retry_after_max: float = 300.0  # the longest Retry-After honoured


DEFAULT_RETRY = RetryPolicy()


class ReceiverRefused(Exception):
    """The receiver answered with something other than 2xx."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"answered HTTP {status}")
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429) or self.status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def event_body(engine: sa.Engine, event: Event) -> bytes:
    """The JSON a receiver gets: the event and its task as it is now (null if it is gone)."""
    with engine.connect() as conn:
        try:
            task: dict[str, Any] | None = board.get_task(conn, event.task_id).model_dump(mode="json")
        except NotFound:
            task = None
    payload = {
        "id": event.seq, "kind": event.kind, "task_id": event.task_id, "run_id": event.run_id,
        "data": event.data, "at": event.at, "task": task,
    }  # fmt: skip
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookDispatcher:
    """Sends each webhook the events it wants, in order, each webhook at its own pace."""

    def __init__(
        self,
        engine: sa.Engine,
        hooks: list[Webhook],
        *,
        poll_seconds: float = 0.5,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.hooks = hooks
        self.poll_seconds = poll_seconds
        self.retry = retry
        self.transport = transport

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled; under ``TaskGroup.start`` it is started once every cursor is in place."""
        cursors = [await anyio.to_thread.run_sync(start_cursor, self.engine, hook) for hook in self.hooks]
        task_status.started()
        if not self.hooks:
            return
        client = httpx.AsyncClient(transport=self.transport, headers={"User-Agent": USER_AGENT})
        async with client, anyio.create_task_group() as group:
            for hook, cursor in zip(self.hooks, cursors, strict=True):
                loop = _WebhookLoop(self.engine, client, hook, self.retry)
                group.start_soon(self._keep_serving, loop, cursor, name=f"webhook {hook.name}")

    async def _keep_serving(self, loop: _WebhookLoop, cursor: int | None) -> None:
        # A database blip must neither silence a webhook for good nor take `autodo serve` down with it.
        while True:
            try:
                if cursor is None:
                    cursor = await anyio.to_thread.run_sync(start_cursor, self.engine, loop.hook)
                await loop.run(cursor, self.poll_seconds)
            except Exception:
                log.exception("webhook %s stopped; starting again in %s s", loop.hook.name, RESTART_WAIT)
            cursor = None
            await anyio.sleep(RESTART_WAIT)


class _WebhookLoop:
    """One webhook's own reader, cursor and retries, so a slow receiver holds up only itself."""

    def __init__(self, engine: sa.Engine, client: httpx.AsyncClient, hook: Webhook, retry: RetryPolicy) -> None:
        self.engine = engine
        self.client = client
        self.hook = hook
        self.retry = retry
        self.saved = 0

    async def run(self, after: int, poll_seconds: float) -> None:
        self.saved = after
        tail = EventTail(self.engine, after=after)
        while True:
            events = await anyio.to_thread.run_sync(tail.read)
            if not events:
                await anyio.sleep(poll_seconds)
                continue
            for event in events:
                if self.hook.wants(event.kind):
                    await self._deliver(event)
            await self._save(events[-1].seq)  # past the kinds it does not want, so a restart skips them

    async def _deliver(self, event: Event) -> None:
        body = await anyio.to_thread.run_sync(event_body, self.engine, event)
        try:
            await self._send_with_retries(body, event)
        except (httpx.HTTPError, ReceiverRefused) as error:
            log.warning(
                "webhook %s gave up on event %s (%s): %s: %s",
                self.hook.name, event.seq, event.kind, type(error).__name__, error,
            )  # fmt: skip
        await self._save(event.seq)

    async def _send_with_retries(self, body: bytes, event: Event) -> None:
        retries = stamina.retry_context(
            on=self._backoff,
            attempts=self.retry.attempts,
            timeout=None,
            wait_initial=self.retry.wait_initial,
            wait_max=self.retry.wait_max,
            wait_jitter=self.retry.wait_jitter,
        )
        async for attempt in retries:
            with attempt:
                await self._send(body, event)

    async def _send(self, body: bytes, event: Event) -> None:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Autodo-Event": event.kind,
            "X-Autodo-Delivery": str(event.seq),
            "X-Autodo-Timestamp": str(timestamp),
            "X-Autodo-Signature": sign(self.hook.secret, timestamp, body),
        }
        response = await self.client.post(self.hook.url, content=body, headers=headers, timeout=self.hook.timeout)
        if not response.is_success:
            raise ReceiverRefused(response.status_code, retry_after_seconds(response.headers.get("Retry-After")))

    def _backoff(self, error: Exception) -> bool | float:
        """Whether to try again; when the receiver said how long to wait, that long (capped)."""
        if isinstance(error, httpx.TransportError):
            return True  # refused, reset or timed out: the receiver may be back in a moment
        if not isinstance(error, ReceiverRefused) or not error.retryable:
            return False  # the receiver rejects this event; sending it again changes nothing
        if error.retry_after is None:
            return True
        return min(error.retry_after, self.retry.retry_after_max)

    async def _save(self, seq: int) -> None:
        if seq <= self.saved:
            return
        # Shielded: once a receiver has taken an event, shutting down must not make us send it again.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(save_cursor, self.engine, self.hook, seq)
        self.saved = seq
