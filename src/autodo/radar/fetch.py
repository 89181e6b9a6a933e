"""Pull feedback from a channel's API, page by page, without crashing on whatever comes back.

Every request has a timeout and a User-Agent. A page that cannot be used (a 429 longer than we
wait, a 5xx that outlasts the retries, an HTML error page, an empty or truncated body) ends the
pull with a counted reason in ``parsed.skipped``: the items pulled so far are returned and the
cursor stays where it was, so the next pull covers the gap. Items are idempotent by source id,
so pulling something twice is harmless.

A cursor is opaque to the caller: the newest post id for X, the newest item time (ISO 8601,
UTC) for every other kind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from autodo.errors import ConfigError, InvalidInput
from autodo.radar.formats import DUPLICATE_ID, Parser, parse_appstore, parse_github, parse_hn, parse_reddit, parse_x
from autodo.radar.formats import parse_time as read_time
from autodo.radar.formats.github import PULL_REQUEST_COMMENT, pull_request_threads
from autodo.radar.items import Item, Parsed

SourceKind = Literal["reddit", "x", "hn", "appstore", "github"]
PUBLIC_HOSTS: dict[str, str] = {
    "reddit": "https://www.reddit.com",
    "x": "https://api.x.com",
    "hn": "https://hn.algolia.com",
    "appstore": "https://itunes.apple.com",
    "github": "https://api.github.com",
}
TOKEN_VARIABLES = {"x": "X_BEARER_TOKEN", "github": "GITHUB_TOKEN"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "reddit": ("subreddit",),
    "x": ("query",),
    "hn": ("query",),
    "appstore": ("app_id",),
    "github": ("owner", "repo"),
}
PARSERS: dict[str, Parser] = {
    "reddit": parse_reddit,
    "x": parse_x,
    "hn": parse_hn,
    "appstore": parse_appstore,
    "github": parse_github,
}
USER_AGENT = "autodo-radar/0.1 (feedback radar of the autodo to-do list)"
ATTEMPTS = 3  # per page: the first try and two retries after a 429 or a 5xx
APPSTORE_LAST_PAGE = 10  # the review feed serves pages 1 to 10 and nothing older
X_FIELDS = "created_at,author_id,conversation_id,public_metrics,lang,referenced_tweets,entities,note_tweet"

# Why a pull stopped early, counted in parsed.skipped (a server error adds its status code).
HTML_PAGE = "HTML instead of JSON"
EMPTY_RESPONSE = "empty response"
NOT_JSON = "unreadable response (not JSON)"
TOO_LARGE = "response too large"
PAGE_CAP = "page cap reached (more pages left)"
FOREIGN_LINK = "next-page link outside the base URL"


class Source(BaseModel):
    """One channel to pull from. Tokens stay in the environment; only the variable's name is here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SourceKind
    subreddit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_+]+$")
    query: str | None = None  # X and Hacker News search
    app_id: str | None = Field(default=None, pattern=r"^\d+$")
    country: str = Field(default="us", pattern=r"^[a-z]{2}$")
    owner: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    base_url: str | None = None  # None: the channel's public host
    token_env: str | None = None  # default X_BEARER_TOKEN for X, GITHUB_TOKEN for GitHub
    max_pages: int = Field(default=10, ge=1, le=100)
    timeout: float = Field(default=20.0, gt=0, le=300)
    max_wait: float = Field(default=30.0, ge=0, le=600)  # the longest Retry-After worth waiting out
    max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    user_agent: str = USER_AGENT

    @model_validator(mode="after")
    def _has_what_its_kind_needs(self) -> Self:
        missing = [name for name in REQUIRED[self.kind] if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} source needs {' and '.join(missing)}")
        return self

    @property
    def root(self) -> str:
        return (self.base_url or PUBLIC_HOSTS[self.kind]).rstrip("/")

    def token(self) -> str | None:
        variable = self.token_env or TOKEN_VARIABLES.get(self.kind)
        return (os.environ.get(variable) or None) if variable else None


class FetchResult(BaseModel):
    """What one pull brought: the items, what was skipped and why, and the cursor for the next pull."""

    parsed: Parsed
    cursor: str | None


def fetch(
    source: Source, client: httpx.Client, since_cursor: str | None, *, sleep: Callable[[float], None] = time.sleep
) -> FetchResult:
    """Pull what is newer than ``since_cursor`` (the most recent pages when None), up to the page cap."""
    _check_cursor(source, since_cursor)
    if source.kind == "x" and not source.token():
        raise ConfigError(f"X needs a bearer token: set {source.token_env or TOKEN_VARIABLES['x']}")
    pull = _Pull()
    try:
        _pull_pages(source, client, since_cursor, pull, sleep)
    except _Stopped as stop:
        pull.parsed.skip(stop.reason)
        return FetchResult(parsed=pull.finish(), cursor=since_cursor)
    return FetchResult(parsed=pull.finish(), cursor=_newer_cursor(source, pull.parsed.items, since_cursor))


class _Stopped(Exception):
    """The pull cannot go on; ``reason`` is counted and what was pulled so far is kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Page:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    number: int = 1
    endpoint: str = ""  # GitHub: "issues", then "comments"
    since: str | None = None  # GitHub: the cursor, for the comments after the issues' last page


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    next_link: str | None


@dataclass
class _Pull:
    parsed: Parsed = field(default_factory=Parsed)
    seen: set[str] = field(default_factory=set)
    pull_request_threads: set[str] = field(default_factory=set)

    def add(self, page: Parsed) -> None:
        self.parsed.skipped.update(page.skipped)
        for item in page.items:
            if item.source_id in self.seen:
                self.parsed.skip(DUPLICATE_ID)  # listings shift while we page through them
            else:
                self.seen.add(item.source_id)
                self.parsed.items.append(item)

    def finish(self) -> Parsed:
        """The items, less GitHub comments on the pull requests seen in this pull."""
        if self.pull_request_threads:
            kept = [item for item in self.parsed.items if not self._on_pull_request(item)]
            self.parsed.skip(PULL_REQUEST_COMMENT, len(self.parsed.items) - len(kept))
            self.parsed.items = kept
        return self.parsed

    def _on_pull_request(self, item: Item) -> bool:
        return item.source_id.startswith("comment:") and item.thread in self.pull_request_threads


def _pull_pages(
    source: Source, client: httpx.Client, since: str | None, pull: _Pull, sleep: Callable[[float], None]
) -> None:
    page: _Page | None = _first_page(source, since)
    for _ in range(source.max_pages):
        if page is None:
            return
        reply = _get(client, source, page, sleep)
        payload = _read_json(reply)
        parsed = _parse(source, reply)
        pull.add(parsed)
        if page.endpoint == "issues":
            pull.pull_request_threads |= pull_request_threads(payload)
        page = None if _reached_cursor(source, parsed, since) else _NEXT_PAGE[source.kind](source, page, reply, payload)
    if page is not None:
        pull.parsed.skip(PAGE_CAP)


def _get(client: httpx.Client, source: Source, page: _Page, sleep: Callable[[float], None]) -> _Reply:
    """The page, after waiting out a short rate limit or a passing server error."""
    reply = _send(client, source, page)
    attempt = 1
    while not 200 <= reply.status < 300:
        reason, wait = _refusal(reply, attempt, source.max_wait)
        if wait is None or attempt == ATTEMPTS:
            raise _Stopped(reason)
        sleep(wait)
        attempt += 1
        reply = _send(client, source, page)
    return reply


def _send(client: httpx.Client, source: Source, page: _Page) -> _Reply:
    headers, params = _headers(source), page.params or None  # empty params would wipe a link's query
    try:
        with client.stream("GET", page.url, params=params, headers=headers, timeout=source.timeout) as response:
            body = _read_capped(response, source.max_bytes)
            next_link = response.links.get("next", {}).get("url")
            return _Reply(response.status_code, response.headers, body, next_link)
    except httpx.HTTPError as error:
        raise _Stopped(f"network error ({type(error).__name__})") from error


def _headers(source: Source) -> dict[str, str]:
    headers = {"User-Agent": source.user_agent, "Accept": "application/json"}
    if source.kind == "github":
        headers |= {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = source.token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise _Stopped(TOO_LARGE)
    return bytes(body)


def _refusal(reply: _Reply, attempt: int, max_wait: float) -> tuple[str, float | None]:
    """Why the source said no, and how long to wait before asking again (None: not this pull)."""
    exhausted = reply.status == 403 and reply.headers.get("x-ratelimit-remaining") == "0"  # GitHub's way
    if reply.status == 429 or exhausted:
        wait = _retry_after(reply.headers)
        wait = 2.0 * attempt if wait is None else wait
        return f"rate limited ({reply.status})", wait if wait <= max_wait else None
    if reply.status >= 500:
        return f"server error ({reply.status})", float(attempt)
    return f"refused (HTTP {reply.status})", None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _read_json(reply: _Reply) -> Any:
    if not reply.body.strip():
        raise _Stopped(EMPTY_RESPONSE)
    if "html" in reply.headers.get("content-type", "") or reply.body.lstrip()[:1] == b"<":
        raise _Stopped(HTML_PAGE)
    try:
        return json.loads(reply.body)
    except (ValueError, RecursionError) as error:
        raise _Stopped(NOT_JSON) from error


def _parse(source: Source, reply: _Reply) -> Parsed:
    try:
        return PARSERS[source.kind](reply.body)
    except InvalidInput as error:
        raise _Stopped(f"unreadable response (not a {source.kind} response)") from error


def _reached_cursor(source: Source, page: Parsed, since: str | None) -> bool:
    """Reddit and the App Store cannot filter by time: stop paging once a page goes past the cursor."""
    if since is None or source.kind not in ("reddit", "appstore"):
        return False
    cursor = _cursor_time(since)
    return any(item.at is not None and item.at < cursor for item in page.items)


def _first_page(source: Source, since: str | None) -> _Page:
    root = source.root
    if source.kind == "reddit":
        return _Page(f"{root}/r/{source.subreddit}/new.json", {"limit": "100", "raw_json": "1"})
    if source.kind == "x":
        params = {"query": source.query or "", "max_results": "100", "tweet.fields": X_FIELDS}
        params |= {"expansions": "author_id", "user.fields": "username,public_metrics"}
        return _Page(f"{root}/2/tweets/search/recent", params | ({"since_id": since} if since else {}))
    if source.kind == "hn":
        params = {"query": source.query or "", "tags": "(story,comment)", "hitsPerPage": "100", "page": "0"}
        if since:
            params["numericFilters"] = f"created_at_i>={int(_cursor_time(since).timestamp())}"
        return _Page(f"{root}/api/v1/search_by_date", params, number=0)
    if source.kind == "appstore":
        return _appstore_page(source, 1)
    return _github_page(source, "issues", since)


def _appstore_page(source: Source, number: int) -> _Page:
    path = f"/{source.country}/rss/customerreviews/page={number}/id={source.app_id}/sortBy=mostRecent/json"
    return _Page(source.root + path, number=number)


def _github_page(source: Source, endpoint: str, since: str | None) -> _Page:
    path = "issues" if endpoint == "issues" else "issues/comments"
    params = {"per_page": "100"} | ({"state": "all"} if endpoint == "issues" else {})
    url = f"{source.root}/repos/{source.owner}/{source.repo}/{path}"
    return _Page(url, params | ({"since": since} if since else {}), endpoint=endpoint, since=since)


def _next_reddit(source: Source, page: _Page, reply: _Reply, payload: Any) -> _Page | None:
    after = _dig(payload, "data", "after")
    return replace(page, params=page.params | {"after": after}) if isinstance(after, str) and after else None


def _next_x(source: Source, page: _Page, reply: _Reply, payload: Any) -> _Page | None:
    token = _dig(payload, "meta", "next_token")
    return replace(page, params=page.params | {"next_token": token}) if isinstance(token, str) and token else None


def _next_hn(source: Source, page: _Page, reply: _Reply, payload: Any) -> _Page | None:
    pages = _dig(payload, "nbPages")
    if not isinstance(pages, int) or page.number + 1 >= pages:
        return None
    return replace(page, params=page.params | {"page": str(page.number + 1)}, number=page.number + 1)


def _next_appstore(source: Source, page: _Page, reply: _Reply, payload: Any) -> _Page | None:
    if not _dig(payload, "feed", "entry") or page.number >= APPSTORE_LAST_PAGE:
        return None
    return _appstore_page(source, page.number + 1)


def _next_github(source: Source, page: _Page, reply: _Reply, payload: Any) -> _Page | None:
    if reply.next_link:
        # The token goes with every request: never follow a link to some other host.
        if not reply.next_link.startswith(source.root + "/"):
            raise _Stopped(FOREIGN_LINK)
        return replace(page, url=reply.next_link, params={})
    if page.endpoint == "issues":
        return _github_page(source, "comments", page.since)
    return None


_NEXT_PAGE: dict[str, Callable[[Source, _Page, _Reply, Any], _Page | None]] = {
    "reddit": _next_reddit,
    "x": _next_x,
    "hn": _next_hn,
    "appstore": _next_appstore,
    "github": _next_github,
}


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _check_cursor(source: Source, since: str | None) -> None:
    if since is None:
        return
    if source.kind == "x":
        if not since.isdigit():
            raise InvalidInput(f"cursor {since!r} is not an X post id; pass the cursor a previous fetch returned")
        return
    _cursor_time(since)


def _cursor_time(since: str) -> datetime:
    try:
        moment = read_time(since)
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInput(f"cursor {since!r} is not a time; pass the cursor a previous fetch returned")
    return moment


def _newer_cursor(source: Source, items: list[Item], since: str | None) -> str | None:
    if source.kind == "x":
        ids = [int(item.source_id) for item in items if item.source_id.isdigit()]
        ids += [int(since)] if since else []
        return str(max(ids)) if ids else None
    times = [item.at for item in items if item.at is not None]
    times += [_cursor_time(since)] if since else []
    # Whole seconds, rounded down: the boundary item is pulled again, never missed.
    return max(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else None


__all__ = ["PUBLIC_HOSTS", "FetchResult", "Source", "SourceKind", "fetch"]
