"""What every channel parser shares: checking raw fields into items, reading times, text and lines."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import zstandard

from autodo.errors import InvalidInput
from autodo.radar.items import MAX_TEXT, Item, Parsed, hash_author

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_MAX_WINDOW = 2**31  # Pushshift-style dumps are compressed with long windows
ZSTD_CHUNK = 1024 * 1024

# Skip reasons shared by every channel; each channel adds its own.
MISSING_ID = "missing id"
DUPLICATE_ID = "duplicate id"
EMPTY_TEXT = "empty text"
TOO_LONG = f"text longer than {MAX_TEXT} characters"
BAD_DATE = "unparseable date"
DELETED = "deleted or removed"
BOT = "bot author"
BAD_LINE = "unreadable line (not a JSON object)"
BAD_ZSTD = "truncated or corrupt zstd data"

DELETED_MARKERS = frozenset({"[deleted]", "[removed]", "[removed by reddit]"})
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_BREAKS = re.compile(r"<\s*(br|/?p|/?div|/?li|/?pre)\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")

JSON = Any  # a decoded JSON value; every read of it goes through the helpers below


@dataclass
class Draft:
    """An item's raw fields as a channel gives them, before they are checked."""

    source_id: object
    title: object = None
    body: object = None
    at: object = None
    author: object = None
    url: str | None = None
    rating: object = None
    engagement: int = 0
    thread: object = None
    needs_body: bool = False  # a title alone is not enough (a mapped text column must have text)


@dataclass
class Collector:
    """Turns drafts into items, counting every draft it has to skip and why."""

    source: str
    parsed: Parsed = field(default_factory=Parsed)
    seen: set[str] = field(default_factory=set)

    def add(self, draft: Draft) -> None:
        outcome = build_item(self.source, draft)
        if isinstance(outcome, str):
            self.parsed.skip(outcome)
        elif outcome.source_id in self.seen:
            self.parsed.skip(DUPLICATE_ID)
        else:
            self.seen.add(outcome.source_id)
            self.parsed.items.append(outcome)


def build_item(source: str, draft: Draft) -> Item | str:
    """The checked item, or the reason it has to be skipped."""
    source_id = clean(draft.source_id)
    if not source_id:
        return MISSING_ID
    title, body = clean(draft.title), clean(draft.body)
    if title in DELETED_MARKERS or body in DELETED_MARKERS:
        return DELETED
    if not body and (draft.needs_body or not title):
        return EMPTY_TEXT
    if len(title) + len(body) > MAX_TEXT:
        return TOO_LONG
    try:
        at = parse_time(draft.at)
    except ValueError:
        return BAD_DATE
    author = clean(draft.author)
    return Item(
        source=source,
        source_id=source_id,
        url=draft.url or None,
        # "[deleted]" is many people, not one: hashing it would merge them all into one reporter.
        author=None if author in DELETED_MARKERS else hash_author(source, author),
        at=at,
        title=title,
        body=body,
        rating=as_float(draft.rating),
        engagement=max(0, draft.engagement),
        thread=clean(draft.thread) or None,
    )


def clean(value: object) -> str:
    """Text without surrounding space or NUL characters (which PostgreSQL cannot store)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\x00", "").strip()


def parse_time(value: object) -> datetime | None:
    """A UTC time from epoch seconds or milliseconds, ISO 8601 or RFC 2822; None when absent.

    Raises ValueError when a time is there but cannot be read.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if _NUMBER.fullmatch(text):
        return _from_epoch(float(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = parsedate_to_datetime(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if abs(seconds) > 1e11:  # milliseconds: 1e11 seconds would be the year 5138
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError) as error:
        raise ValueError(str(error)) from error


def as_int(value: object) -> int:
    """A count, or 0 when the channel left it out or sent something else."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    return int(float(text)) if _NUMBER.fullmatch(text) else 0


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def as_dict(value: JSON) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: JSON) -> list[Any]:
    return value if isinstance(value, list) else []


def html_to_text(markup: str) -> str:
    """Plain text from the small HTML subset channels use in bodies (HN, mail)."""
    return html.unescape(_TAGS.sub("", _BREAKS.sub("\n", markup)))


def require_content(data: bytes, label: str) -> None:
    """Refuse an empty or HTML file before a parser makes a confusing error of it."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise InvalidInput(f"the file is empty; expected {label}")
    if head[:1] == b"<":
        raise InvalidInput(f"HTML, not JSON (an error page?); is this {label}?")


def load_json(data: bytes, label: str) -> JSON:
    """The decoded JSON document, or InvalidInput naming what the file was meant to be."""
    require_content(data, label)
    try:
        return json.loads(data)
    except UnicodeDecodeError as error:
        raise InvalidInput(f"not UTF-8 text ({error.reason} at byte {error.start}); is this {label}?") from error
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise InvalidInput(f"not JSON: {error.msg} ({where}); is this {label}?") from error
    except RecursionError as error:
        raise InvalidInput(f"JSON nested too deeply; is this {label}?") from error


def json_lines(data: bytes, parsed: Parsed) -> Iterator[dict[str, Any]]:
    """The objects of NDJSON / JSON Lines, plain or zstd-compressed, one line in memory at a time.

    A bad line is counted in ``parsed`` and skipped; if no line at all is JSON the file is not
    JSON Lines and InvalidInput is raised once every line has been tried.
    """
    good = bad = 0
    for line in _lines(data, parsed):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            good += 1
            yield value
        else:
            bad += 1
            parsed.skip(BAD_LINE)
    if bad and not good:
        raise InvalidInput(f"no line is a JSON object ({bad} lines tried); is this JSON Lines?")


def _lines(data: bytes, parsed: Parsed) -> Iterator[bytes]:
    if not data.startswith(ZSTD_MAGIC):
        yield from io.BytesIO(data)
        return
    try:
        yield from _split_lines(_zstd_pieces(data))
    except zstandard.ZstdError:
        parsed.skip(BAD_ZSTD)  # the lines read before the damage are kept


def _zstd_pieces(data: bytes) -> Iterator[bytes]:
    """The decompressed data of every frame, a piece at a time; ZstdError if it stops mid-frame."""
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    view, offset = memoryview(data), 0
    while offset < len(view):
        frame = decompressor.decompressobj()
        while not frame.eof and offset < len(view):
            chunk = view[offset : offset + ZSTD_CHUNK]
            offset += len(chunk)
            yield frame.decompress(chunk)
        if not frame.eof:
            # A stream reader would report a cut-off download as a clean end: check it ourselves.
            raise zstandard.ZstdError("the data ends in the middle of a frame")
        offset -= len(frame.unused_data)


def _split_lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    partial: list[bytes] = []  # a line longer than one piece, in parts until its newline comes
    for piece in pieces:
        lines = piece.split(b"\n")
        if len(lines) == 1:
            partial.append(piece)
            continue
        yield b"".join([*partial, lines[0]])
        yield from lines[1:-1]
        partial = [lines[-1]]
    tail = b"".join(partial)
    if tail:
        yield tail


def decode_text(data: bytes, label: str) -> str:
    """Text from UTF-8 or UTF-16 (with or without a BOM), the encodings exports come in."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif data[1:2] == b"\x00" and data[:1] != b"\x00":
        encoding = "utf-16-le"  # BOM-less UTF-16: every ASCII character has a NUL after it
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"not {encoding.removesuffix('-sig').upper()} text ({error.reason} at byte {error.start}); "
            f"save {label} as UTF-8 or UTF-16 and try again"
        ) from error


def raise_field_limit() -> None:
    """Let the csv module read 10 MB cells, so a long review is skipped with a reason, not an error."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


_CSV_FIELD_LIMIT = 256 * 1024 * 1024
