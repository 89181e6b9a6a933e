"""Google Play reviews: the Play Console's monthly CSV export (UTF-16 with a BOM), or scraper CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from urllib.parse import parse_qs, urlsplit

from autodo.errors import InvalidInput
from autodo.radar.formats._common import Collector, Draft, as_int, decode_text, raise_field_limit
from autodo.radar.items import Parsed

LABEL = "a Google Play review export (CSV)"
TEXT_COLUMNS = ("Review Text", "content")  # the Console's name, then google-play-scraper's


def parse_play(data: bytes) -> Parsed:
    """Reviews from ``reviews_<package>_<YYYYMM>.csv``; also the google-play-scraper columns."""
    if not data.strip(b"\xff\xfe\xef\xbb\xbf\x00 \t\r\n"):
        raise InvalidInput(f"the file is empty; expected {LABEL}")
    raise_field_limit()
    reader = csv.DictReader(io.StringIO(decode_text(data, LABEL), newline=""))
    header = reader.fieldnames or []
    if not any(column in header for column in TEXT_COLUMNS):
        raise InvalidInput(f"no 'Review Text' or 'content' column (columns: {', '.join(header)}); is this {LABEL}?")
    collector = Collector("play")
    try:
        for row in reader:
            collector.add(_draft({key: value or "" for key, value in row.items() if isinstance(key, str)}))
    except csv.Error as error:
        raise InvalidInput(f"broken CSV at line {reader.line_num}: {error}; is this {LABEL}?") from error
    return collector.parsed


def _draft(row: dict[str, str]) -> Draft:
    link = row.get("Review Link", "").strip()
    return Draft(
        source_id=_review_id(row, link),
        title=row.get("Review Title"),
        body=row.get("Review Text") or row.get("content"),
        at=row.get("Review Submit Millis Since Epoch") or row.get("Review Submit Date and Time") or row.get("at"),
        author=row.get("userName"),  # the Console export names no one
        url=link if link.startswith("http") else None,
        rating=row.get("Star Rating") or row.get("score"),
        engagement=as_int(row.get("thumbsUpCount")),
    )


def _review_id(row: dict[str, str], link: str) -> str:
    if row.get("reviewId"):
        return row["reviewId"]
    review_ids = parse_qs(urlsplit(link).query).get("reviewId")
    if review_ids:
        return review_ids[0]
    if link:
        return link
    # No id column in the Console export and no link on some rows: the submit moment, device and
    # app pin a review down and stay the same when next month's export repeats it.
    if not row.get("Review Submit Millis Since Epoch"):
        return ""
    key = "|".join(row.get(name, "") for name in ("Package Name", "Review Submit Millis Since Epoch", "Device"))
    return "play-" + hashlib.sha256(key.encode()).hexdigest()[:16]
