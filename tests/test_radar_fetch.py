"""The radar's fetchers, against recorded fixtures served on loopback: paging, limits, bad answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from autodo.errors import ConfigError, InvalidInput
from autodo.radar.fetch import (
    EMPTY_RESPONSE,
    FOREIGN_LINK,
    HTML_PAGE,
    NOT_JSON,
    PAGE_CAP,
    TOO_LARGE,
    USER_AGENT,
    FetchResult,
    Source,
    fetch,
)
from autodo.radar.formats import BOT, DELETED, DUPLICATE_ID, EMPTY_TEXT
from autodo.radar.formats.appstore import NOT_REVIEW
from autodo.radar.formats.github import PULL_REQUEST, PULL_REQUEST_COMMENT
from autodo.radar.formats.x_api import RETWEET
from autodo.radar.items import hash_author

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass

FIXTURES = Path(__file__).parent / "radar_fixtures"
JSON = {"Content-Type": "application/json; charset=utf-8"}


@dataclass
class Reply:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class Loopback(ThreadingHTTPServer):
    """Serves queued replies per path on 127.0.0.1, in order; the last one repeats."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def serve(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def reply_to(self, path: str) -> Reply:
        queue = self.routes.get(path)
        if not queue:
            return Reply(b'{"message": "Not Found"}', status=404)
        return queue.pop(0) if len(queue) > 1 else queue[0]


class _Handler(BaseHTTPRequestHandler):
    server: Loopback

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.seen.append(Seen(parts.path, dict(parse_qsl(parts.query)), dict(self.headers.items())))
        reply = self.server.reply_to(parts.path)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def server() -> Iterator[Loopback]:
    loopback = Loopback()
    # A short poll interval: shutdown() waits for the loop to notice, up to one interval.
    thread = threading.Thread(target=loopback.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield loopback
    loopback.shutdown()
    loopback.server_close()
    thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:  # no proxy from the environment: loopback only
        yield http


class Sleeps(list[float]):
    """Records the waits a fetch asks for instead of sleeping through them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def page(name: str) -> Reply:
    return Reply((FIXTURES / name).read_bytes())


def reddit(server: Loopback, **settings: object) -> Source:
    return Source.model_validate(
        {"kind": "reddit", "subreddit": "autodo", "base_url": server.url, "timeout": 5} | settings
    )


def ids(result: FetchResult) -> list[str]:
    return [item.source_id for item in result.parsed.items]


# Paging through each channel


def test_reddit_pull_follows_after_across_two_pages(server: Loopback, client: httpx.Client) -> None:
    server.serve("/r/autodo/new.json", page("reddit_new_page1.json"), page("reddit_new_page2.json"))
    result = fetch(reddit(server), client, None)
    assert ids(result) == ["t3_1aa01", "t3_1aa03"]
    assert result.parsed.skipped == {DELETED: 1, DUPLICATE_ID: 1}
    assert result.cursor == "2024-05-01T10:00:00Z"
    first, second = server.seen
    assert first.query == {"limit": "100", "raw_json": "1"}
    assert second.query == {"limit": "100", "raw_json": "1", "after": "t3_1aa02"}
    assert first.headers["User-Agent"] == USER_AGENT


def listing(after: str | None, *posts: tuple[str, int]) -> Reply:
    """A Reddit listing page of self posts made at the given epoch seconds."""
    children = [
        {"kind": "t3", "data": {"id": post_id, "name": f"t3_{post_id}", "title": f"post {post_id}", "created_utc": at}}
        for post_id, at in posts
    ]
    return Reply(json.dumps({"kind": "Listing", "data": {"after": after, "children": children}}).encode())


def test_reddit_pull_stops_at_a_page_older_than_the_cursor(server: Loopback, client: httpx.Client) -> None:
    newer = listing("t3_b", ("a", 1714557600), ("b", 1714554000))  # 10:00 and 09:00 on 1 May 2024
    older = listing("t3_d", ("c", 1714550400), ("d", 1714471200))  # 08:00, and 30 April
    server.serve("/r/autodo/new.json", newer, older, listing(None, ("e", 1714400000)))
    result = fetch(reddit(server), client, "2024-05-01T08:30:00Z")
    assert len(server.seen) == 2  # the second page reached past the cursor: no third request
    assert ids(result) == ["t3_a", "t3_b", "t3_c", "t3_d"]
    assert result.cursor == "2024-05-01T10:00:00Z"


def test_a_pull_run_twice_gives_the_same_items(server: Loopback, client: httpx.Client) -> None:
    server.serve("/r/autodo/new.json", page("reddit_new_page1.json"))
    first, again = fetch(reddit(server), client, None), fetch(reddit(server), client, None)
    assert first == again


def test_x_pull_sends_the_token_and_follows_next_token(
    server: Loopback, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADAR_X_TOKEN", "secret-token")
    server.serve("/2/tweets/search/recent", page("x_search_page1.json"), page("x_search_page2.json"))
    source = Source(kind="x", query="autodo -is:retweet", base_url=server.url, token_env="RADAR_X_TOKEN")
    result = fetch(source, client, "1780000000000000000")
    assert ids(result) == ["1785000000000000001", "1785000000000000003", "1784000000000000009"]
    assert result.parsed.items[2].url == "https://x.com/grace_h/status/1784000000000000009"
    assert result.parsed.skipped == {RETWEET: 1}
    assert result.cursor == "1785000000000000003"
    first, second = server.seen
    assert first.headers["Authorization"] == "Bearer secret-token"
    assert (first.query["since_id"], first.query["expansions"]) == ("1780000000000000000", "author_id")
    assert "note_tweet" in first.query["tweet.fields"]
    assert second.query["next_token"] == "b26v89c19zqg8o3fpzbkk"


def test_x_without_a_token_is_a_config_error(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    source = Source(kind="x", query="autodo", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="X_BEARER_TOKEN"):
        fetch(source, client, None)


def test_hn_pull_pages_until_nb_pages_and_filters_by_cursor(server: Loopback, client: httpx.Client) -> None:
    server.serve("/api/v1/search_by_date", page("hn_search_page0.json"), page("hn_search_page1.json"))
    source = Source(kind="hn", query="autodo", base_url=server.url)
    result = fetch(source, client, "2024-04-30T00:00:00Z")
    assert ids(result) == ["40000001", "40000002", "40000004"]
    assert result.parsed.skipped == {EMPTY_TEXT: 1}
    assert result.cursor == "2024-05-01T10:20:00Z"
    assert [seen.query["page"] for seen in server.seen] == ["0", "1"]
    assert server.seen[0].query["numericFilters"] == "created_at_i>=1714435200"
    assert server.seen[0].query["tags"] == "(story,comment)"


def test_appstore_pull_walks_pages_until_one_has_no_entries(server: Loopback, client: httpx.Client) -> None:
    feed = "/gb/rss/customerreviews/page={}/id=1234567890/sortBy=mostRecent/json"
    server.serve(feed.format(1), page("appstore_page1.json"))
    server.serve(feed.format(2), page("appstore_single.json"))
    server.serve(feed.format(3), page("appstore_empty.json"))
    source = Source(kind="appstore", app_id="1234567890", country="gb", base_url=server.url)
    result = fetch(source, client, None)
    assert ids(result) == ["11000000001", "11000000002", "11000000009"]
    assert result.parsed.items[2].author == hash_author("appstore", "Priya")
    assert [seen.path for seen in server.seen] == [feed.format(n) for n in (1, 2, 3)]
    assert result.parsed.skipped[NOT_REVIEW] == 1


def test_github_pull_follows_link_then_reads_comments(server: Loopback, client: httpx.Client) -> None:
    link = f'<{server.url}/repos/acme/autodo/issues?page=2&per_page=100>; rel="next", <{server.url}/x>; rel="last"'
    first = Reply(page("github_issues_page1.json").body, headers=JSON | {"Link": link})
    server.serve("/repos/acme/autodo/issues", first, page("github_issues_page2.json"))
    server.serve("/repos/acme/autodo/issues/comments", page("github_comments.json"))
    source = Source(kind="github", owner="acme", repo="autodo", base_url=server.url)
    result = fetch(source, client, "2024-04-01T00:00:00Z")
    assert ids(result) == ["issue:2001", "issue:2003", "issue:1990", "comment:3001"]
    assert result.parsed.skipped == {PULL_REQUEST: 1, PULL_REQUEST_COMMENT: 1, BOT: 1}
    assert result.cursor == "2024-05-01T11:00:00Z"
    issues, next_issues, comments = server.seen
    assert issues.query == {"per_page": "100", "state": "all", "since": "2024-04-01T00:00:00Z"}
    assert next_issues.query == {"page": "2", "per_page": "100"}
    assert comments.query == {"per_page": "100", "since": "2024-04-01T00:00:00Z"}
    assert issues.headers["Accept"] == "application/vnd.github+json"


def test_github_token_goes_only_to_the_base_url(
    server: Loopback, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "gh-secret")
    foreign = Reply(page("github_issues_page1.json").body, headers=JSON | {"Link": '<http://192.0.2.1/p2>; rel="next"'})
    server.serve("/repos/acme/autodo/issues", foreign)
    result = fetch(Source(kind="github", owner="acme", repo="autodo", base_url=server.url), client, None)
    assert server.seen[0].headers["Authorization"] == "Bearer gh-secret"
    assert len(server.seen) == 1
    assert ids(result) == ["issue:2001", "issue:2003"]  # page one is kept
    assert result.parsed.skipped[FOREIGN_LINK] == 1
    assert result.cursor is None  # not advanced past a pull that stopped early


# Bad answers


def test_a_short_retry_after_is_waited_out(server: Loopback, client: httpx.Client) -> None:
    limited = Reply(b'{"message": "slow down"}', status=429, headers=JSON | {"Retry-After": "3"})
    server.serve("/r/autodo/new.json", limited, page("reddit_new_page2.json"))
    sleeps = Sleeps()
    result = fetch(reddit(server), client, None, sleep=sleeps)
    assert sleeps == [3.0]
    assert ids(result) == ["t3_1aa01", "t3_1aa03"]
    assert result.parsed.skipped == {}


def test_a_long_rate_limit_ends_the_pull_and_keeps_what_came_before(server: Loopback, client: httpx.Client) -> None:
    limited = Reply(b"", status=429, headers={"Retry-After": "3600"})
    server.serve("/r/autodo/new.json", page("reddit_new_page1.json"), limited)
    sleeps = Sleeps()
    result = fetch(reddit(server), client, "2024-04-01T00:00:00Z", sleep=sleeps)
    assert sleeps == []
    assert ids(result) == ["t3_1aa01"]
    assert result.parsed.skipped == {DELETED: 1, "rate limited (429)": 1}
    assert result.cursor == "2024-04-01T00:00:00Z"


def test_server_errors_are_retried_then_counted(server: Loopback, client: httpx.Client) -> None:
    server.serve("/r/autodo/new.json", Reply(b"oops", status=503, headers={"Content-Type": "text/plain"}))
    sleeps = Sleeps()
    result = fetch(reddit(server), client, None, sleep=sleeps)
    assert len(server.seen) == 3
    assert sleeps == [1.0, 2.0]
    assert result.parsed.skipped == {"server error (503)": 1}


def test_an_html_page_instead_of_json_is_counted(server: Loopback, client: httpx.Client) -> None:
    html = Reply((FIXTURES / "error_page.html").read_bytes(), headers={"Content-Type": "text/html"})
    server.serve("/api/v1/search_by_date", html)
    result = fetch(Source(kind="hn", query="autodo", base_url=server.url), client, None)
    assert result == FetchResult(parsed=result.parsed, cursor=None)
    assert result.parsed.skipped == {HTML_PAGE: 1}


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", EMPTY_RESPONSE), ((FIXTURES / "reddit_truncated.json").read_bytes(), NOT_JSON)],
)
def test_an_empty_or_truncated_body_is_counted(
    server: Loopback, client: httpx.Client, body: bytes, reason: str
) -> None:
    server.serve("/r/autodo/new.json", Reply(body))
    assert fetch(reddit(server), client, None).parsed.skipped == {reason: 1}


def test_json_of_another_shape_is_counted(server: Loopback, client: httpx.Client) -> None:
    server.serve("/api/v1/search_by_date", Reply(b'{"error": "bad query"}'))
    result = fetch(Source(kind="hn", query="autodo", base_url=server.url), client, None)
    assert result.parsed.skipped == {"unreadable response (not a hn response)": 1}


def test_a_refusal_is_counted_with_its_status(server: Loopback, client: httpx.Client) -> None:
    result = fetch(Source(kind="github", owner="acme", repo="gone", base_url=server.url), client, None)
    assert result.parsed.skipped == {"refused (HTTP 404)": 1}


def test_an_oversized_response_is_not_read_to_the_end(server: Loopback, client: httpx.Client) -> None:
    server.serve("/r/autodo/new.json", page("reddit_new_page1.json"))
    result = fetch(reddit(server, max_bytes=200), client, None)
    assert result.parsed.skipped == {TOO_LARGE: 1}


def test_an_unreachable_host_is_counted(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = Source(kind="reddit", subreddit="autodo", base_url=f"http://127.0.0.1:{port}")
    assert fetch(source, client, None).parsed.skipped == {"network error (ConnectError)": 1}


def test_the_page_cap_is_counted_and_the_cursor_still_moves(server: Loopback, client: httpx.Client) -> None:
    server.serve("/r/autodo/new.json", page("reddit_new_page1.json"))
    result = fetch(reddit(server, max_pages=1), client, None)
    assert result.parsed.skipped == {DELETED: 1, PAGE_CAP: 1}
    assert result.cursor == "2024-05-01T10:00:00Z"


# The source's configuration


def test_a_source_needs_what_its_kind_needs() -> None:
    with pytest.raises(ValidationError, match="a github source needs owner and repo"):
        Source(kind="github")


def test_a_source_refuses_a_token_in_its_config() -> None:
    with pytest.raises(ValidationError, match="token"):
        Source.model_validate({"kind": "x", "query": "autodo", "token": "secret"})


def test_a_source_refuses_path_tricks_in_names() -> None:
    with pytest.raises(ValidationError):
        Source(kind="reddit", subreddit="../../admin")


def test_a_source_defaults_to_the_public_host() -> None:
    assert Source(kind="hn", query="autodo").root == "https://hn.algolia.com"
    assert Source(kind="github", owner="a", repo="b", base_url="http://127.0.0.1:8000/").root == "http://127.0.0.1:8000"


def test_a_cursor_that_is_not_one_is_refused(client: httpx.Client) -> None:
    with pytest.raises(InvalidInput, match="is not a time"):
        fetch(Source(kind="hn", query="autodo", base_url="http://127.0.0.1:9"), client, "yesterday")
