"""One model for every piece of feedback, whatever channel it came from."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

MAX_TEXT = 100_000  # characters of title + body; a longer item is skipped, with a counted reason


class Item(BaseModel):
    """A post, comment, review, issue or mail, normalised."""

    source: str  # the format it came in: reddit, x, hn, appstore, play, github, mbox, csv, jsonl
    source_id: str  # unique within the source; re-importing the same id updates, never duplicates
    url: str | None = None
    author: str | None = None  # hashed (see hash_author): "reported by N people" without names
    at: datetime | None = None  # UTC
    title: str = ""
    body: str = ""
    rating: float | None = None  # stars, 1-5, where the channel has them
    engagement: int = 0  # votes, likes, points, replies: how many others it reached
    thread: str | None = None  # the conversation it belongs to

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}".strip()


class Parsed(BaseModel):
    """What a parser made of some bytes: the items, and how many it skipped for which reason."""

    items: list[Item] = Field(default_factory=list)
    skipped: Counter[str] = Field(default_factory=Counter)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count


def hash_author(source: str, name: str | None) -> str | None:
    """A stable pseudonym: the same person in the same channel counts once, and is not named."""
    if not name or not name.strip():
        return None
    return hashlib.sha256(f"{source}:{name.strip().lower()}".encode()).hexdigest()[:16]
