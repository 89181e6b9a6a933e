"""Reddit: listing JSON (posts ``t3``, comments ``t1``), comment trees and NDJSON dumps."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from autodo.errors import InvalidInput
from autodo.radar.formats._common import (
    BOT,
    JSON,
    ZSTD_MAGIC,
    Collector,
    Draft,
    as_dict,
    as_int,
    as_list,
    json_lines,
    load_json,
)
from autodo.radar.items import Parsed

LABEL = "a Reddit listing, comments page or NDJSON dump"
SITE = "https://www.reddit.com"
MORE = "comments not expanded ('more' stub)"
NOT_POST = "not a post or comment"
_NON_SPACE = re.compile(rb"\S")
BOTS = frozenset({"automoderator"})  # its comments are the subreddit's boilerplate, not feedback


def parse_reddit(data: bytes) -> Parsed:
    """Posts and comments from a listing, a ``/comments/<id>.json`` array or a (zstd) dump."""
    collector = Collector("reddit")
    for kind, thing in _things(data, collector.parsed):
        _add_thing(collector, kind, thing)
    return collector.parsed


def _things(data: bytes, parsed: Parsed) -> Iterator[tuple[str, dict[str, Any]]]:
    if data.startswith(ZSTD_MAGIC) or _is_ndjson(data):
        for line in json_lines(data, parsed):
            yield from _walk(line)
        return
    document = load_json(data, LABEL)
    if not isinstance(document, dict | list):
        raise InvalidInput(f"the file holds a JSON {type(document).__name__}, not {LABEL}")
    yield from _walk(document)


def _is_ndjson(data: bytes) -> bool:
    """Dumps put one object per line; a listing is one document, however it is laid out."""
    first = _NON_SPACE.search(data)  # searched in place: a dump can be gigabytes, so no copies
    if first is None:
        return False
    end = data.find(b"\n", first.start())
    if end < 0 or not _NON_SPACE.search(data, end):
        return False
    try:
        return isinstance(json.loads(data[first.start() : end]), dict)
    except (ValueError, RecursionError):
        return False


def _walk(value: JSON) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every thing in a listing, an array of listings, a wrapped thing or a bare dump object."""
    if isinstance(value, list):
        for element in value:
            yield from _walk(element)
        return
    wrapper = as_dict(value)
    kind = wrapper.get("kind")
    if kind == "Listing":
        yield from _walk(as_dict(wrapper.get("data")).get("children"))
    elif isinstance(kind, str) and "data" in wrapper:
        yield kind, as_dict(wrapper["data"])
    elif wrapper:
        yield _bare_kind(wrapper), wrapper


def _bare_kind(thing: dict[str, Any]) -> str:
    """Dump lines carry no kind: the fullname says it, or the fields do."""
    name = str(thing.get("name") or "")
    if name[:3] in ("t1_", "t3_"):
        return name[:2]
    return "t1" if "body" in thing or "link_id" in thing else "t3"


def _add_thing(collector: Collector, kind: str, thing: dict[str, Any]) -> None:
    if kind == "more":
        collector.parsed.skip(MORE, max(1, len(as_list(thing.get("children")))))
    elif str(thing.get("author") or "").lower() in BOTS:
        collector.parsed.skip(BOT)
    elif kind == "t3":
        collector.add(_post(thing))
    elif kind == "t1":
        collector.add(_comment(thing))
    else:
        collector.parsed.skip(NOT_POST)
    if kind == "t1" and isinstance(thing.get("replies"), dict):
        for reply_kind, reply in _walk(thing["replies"]):
            _add_thing(collector, reply_kind, reply)


def _post(post: dict[str, Any]) -> Draft:
    post_id = str(post.get("id") or "")
    name = post.get("name") or (f"t3_{post_id}" if post_id else None)
    permalink = post.get("permalink")
    if not permalink and post_id:
        subreddit = post.get("subreddit")
        permalink = f"/r/{subreddit}/comments/{post_id}/" if subreddit else f"/comments/{post_id}/"
    return Draft(
        source_id=name,
        title=post.get("title"),
        body=post.get("selftext"),
        at=post.get("created_utc"),
        author=post.get("author"),
        url=_absolute(permalink),
        engagement=max(0, as_int(post.get("score"))) + as_int(post.get("num_comments")),
        thread=name,
    )


def _comment(comment: dict[str, Any]) -> Draft:
    comment_id = str(comment.get("id") or "")
    link_id = str(comment.get("link_id") or "")
    permalink = comment.get("permalink")
    if not permalink and comment_id and link_id:
        permalink = f"/comments/{link_id.removeprefix('t3_')}/_/{comment_id}/"
    return Draft(
        source_id=comment.get("name") or (f"t1_{comment_id}" if comment_id else None),
        body=comment.get("body"),
        at=comment.get("created_utc"),
        author=comment.get("author"),
        url=_absolute(permalink),
        engagement=max(0, as_int(comment.get("score"))),
        thread=link_id or None,
    )


def _absolute(permalink: object) -> str | None:
    if not isinstance(permalink, str) or not permalink:
        return None
    return permalink if permalink.startswith("http") else SITE + permalink
