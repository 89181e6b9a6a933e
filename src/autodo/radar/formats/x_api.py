"""X (Twitter) API v2 search responses, with authors from ``includes.users``."""

from __future__ import annotations

from typing import Any

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, as_dict, as_int, as_list, load_json
from autodo.radar.items import Parsed

LABEL = "an X API v2 search response"
RETWEET = "retweet (the original counts)"
METRICS = ("like_count", "retweet_count", "reply_count", "quote_count")


def parse_x(data: bytes) -> Parsed:
    """Posts from ``GET /2/tweets/search/recent`` (or any v2 response with ``data`` posts)."""
    response = as_dict(load_json(data, LABEL))
    if not {"data", "meta", "includes"} & response.keys():
        raise InvalidInput(f"no 'data', 'meta' or 'includes' key; is this {LABEL}?")
    usernames = _usernames(response)
    collector = Collector("x")
    posts = response.get("data")  # a list from search, one object from a lookup, absent when none
    for post in [posts] if isinstance(posts, dict) else as_list(posts):
        if _is_retweet(as_dict(post)):
            collector.parsed.skip(RETWEET)
        else:
            collector.add(_draft(as_dict(post), usernames))
    return collector.parsed


def _usernames(response: dict[str, Any]) -> dict[str, str]:
    users = [as_dict(user) for user in as_list(as_dict(response.get("includes")).get("users"))]
    return {str(user["id"]): str(user["username"]) for user in users if "id" in user and "username" in user}


def _is_retweet(post: dict[str, Any]) -> bool:
    # A retweet repeats someone else's words; the original's retweet_count already says it spread.
    return any(as_dict(ref).get("type") == "retweeted" for ref in as_list(post.get("referenced_tweets")))


def _draft(post: dict[str, Any], usernames: dict[str, str]) -> Draft:
    post_id = str(post.get("id") or "")
    username = usernames.get(str(post.get("author_id")))
    metrics = as_dict(post.get("public_metrics"))
    # Long posts come truncated in `text`; the whole of it is in `note_tweet`.
    text = as_dict(post.get("note_tweet")).get("text") or post.get("text")
    return Draft(
        source_id=post_id,
        body=text,
        at=post.get("created_at"),
        author=post.get("author_id"),  # stable when the person renames themselves
        url=f"https://x.com/{username or 'i/web'}/status/{post_id}" if post_id else None,
        engagement=sum(as_int(metrics.get(name)) for name in METRICS),
        thread=post.get("conversation_id"),
    )
