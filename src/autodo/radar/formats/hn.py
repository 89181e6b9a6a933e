"""Hacker News through the Algolia search API: stories and comments."""

from __future__ import annotations

from typing import Any

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, as_dict, as_int, as_list, html_to_text, load_json
from autodo.radar.items import Parsed

LABEL = "a Hacker News (Algolia) search response"
ITEM_URL = "https://news.ycombinator.com/item?id="


def parse_hn(data: bytes) -> Parsed:
    """Stories and comments from ``/api/v1/search`` or ``/api/v1/search_by_date``."""
    response = as_dict(load_json(data, LABEL))
    if not isinstance(response.get("hits"), list):
        raise InvalidInput(f"no 'hits' list; is this {LABEL}?")
    collector = Collector("hn")
    for hit in as_list(response["hits"]):
        collector.add(_draft(as_dict(hit)))
    return collector.parsed


def _draft(hit: dict[str, Any]) -> Draft:
    hit_id = str(hit.get("objectID") or "")
    is_comment = "comment" in as_list(hit.get("_tags")) or hit.get("comment_text") is not None
    text = hit.get("comment_text") if is_comment else hit.get("story_text")
    return Draft(
        source_id=hit_id,
        title=None if is_comment else hit.get("title"),
        body=html_to_text(text) if isinstance(text, str) else None,
        at=hit.get("created_at_i") or hit.get("created_at"),
        author=hit.get("author"),
        url=ITEM_URL + hit_id if hit_id else None,
        engagement=as_int(hit.get("points")),  # null for comments: Algolia does not show their votes
        thread=str(hit.get("story_id") or hit_id) if is_comment else hit_id,
    )
