"""Apple App Store customer reviews, from the per-country RSS feed in its JSON form."""

from __future__ import annotations

from typing import Any

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, as_dict, as_int, as_list, load_json
from autodo.radar.items import Parsed

LABEL = "an App Store customer-review feed (RSS JSON)"
NOT_REVIEW = "not a review (app metadata)"


def parse_appstore(data: bytes) -> Parsed:
    """Reviews from ``/<cc>/rss/customerreviews/page=<n>/id=<app>/sortBy=mostRecent/json``."""
    document = as_dict(load_json(data, LABEL))
    if not isinstance(document.get("feed"), dict):
        raise InvalidInput(f"no 'feed' object; is this {LABEL}?")
    entries = document["feed"].get("entry")
    collector = Collector("appstore")
    # A page with one entry carries it as an object, not a one-element list.
    for entry in [entries] if isinstance(entries, dict) else as_list(entries):
        if "im:rating" in as_dict(entry):
            collector.add(_draft(entry))
        else:
            collector.parsed.skip(NOT_REVIEW)  # older feeds put the app itself in entry[0]
    return collector.parsed


def _draft(entry: dict[str, Any]) -> Draft:
    return Draft(
        source_id=_label(entry.get("id")),
        title=_label(entry.get("title")),
        body=_content(entry.get("content")),
        at=_label(entry.get("updated")),
        author=_label(as_dict(entry.get("author")).get("name")),
        url=_link(entry.get("link")),
        rating=_label(entry.get("im:rating")),
        engagement=as_int(_label(entry.get("im:voteSum"))),
    )


def _label(field: object) -> str | None:
    """Every value in the feed is a string wrapped as ``{"label": ...}``."""
    label = as_dict(field).get("label")
    return label if isinstance(label, str) else None


def _content(field: object) -> str | None:
    # Some feeds give the body twice, as text and as html; the text one reads better.
    variants = [as_dict(part) for part in (field if isinstance(field, list) else [field])]
    plain = [part for part in variants if as_dict(part.get("attributes")).get("type") != "html"]
    chosen = plain or variants
    return _label(chosen[0]) if chosen else None


def _link(field: object) -> str | None:
    for link in field if isinstance(field, list) else [field]:
        href = as_dict(as_dict(link).get("attributes")).get("href")
        if isinstance(href, str) and href.startswith("http"):
            return href
    return None
