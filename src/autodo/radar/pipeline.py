"""The radar's computations as the service uses them: vectors, duplicates, clusters, labels, scores.

Everything here is pure (no database): the service loads what is stored, calls these, and
saves the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from autodo.radar import clusters, score
from autodo.radar.embed import Encoder, Vectors
from autodo.radar.items import Item
from autodo.radar.similar import SimilarityIndex, link_duplicates

SPARK_DAYS = 14


def embed(texts: list[str]) -> Vectors:
    return Encoder.shared().encode(texts)


def duplicates(
    kept: Sequence[Item], kept_vectors: Vectors, new: Sequence[Item], new_vectors: Vectors
) -> list[int | None]:
    """For each new item, the index (into kept + new) of the earlier item it repeats, or None."""
    items = [*kept, *new]
    texts = [item.text for item in items]
    vectors = np.vstack([kept_vectors, new_vectors]) if len(kept) else new_vectors
    conversations = [(item.author, item.thread) for item in items]
    found = {d.index: d.of for d in link_duplicates(texts, vectors, len(kept), conversations)}
    return [found.get(len(kept) + position) for position in range(len(new))]


def rebuild(vectors: Vectors, labels: list[int], origin: Vectors) -> clusters.Clustering:
    """The stored clusters as a clustering new items can join."""
    empty = clusters.Clustering(
        labels=np.zeros(0, dtype=np.int64),
        sums=np.zeros((0, vectors.shape[1])),
        counts=np.zeros(0, dtype=np.int64),
        origin=origin,
    )
    if not labels:
        return empty
    return clusters.add_members(empty, clusters.centre(vectors, origin), np.asarray(labels, dtype=np.int64))


def origin_for(vectors: Vectors) -> Vectors:
    return clusters.corpus_origin(vectors)


def extend(clustering: clusters.Clustering, new_vectors: Vectors) -> tuple[list[int], clusters.Clustering]:
    """The cluster number of each new vector (existing ones keep theirs; new ones come after)."""
    grown = clusters.extend(clustering, new_vectors)
    return [int(label) for label in grown.labels[len(clustering.labels) :]], grown


def labels(texts: list[str], cluster_numbers: list[int]) -> list[str]:
    """A readable name per cluster number, from its most distinctive words."""
    return clusters.label_clusters(texts, cluster_numbers)


def summarize(
    members: Sequence[Item], vectors: Vectors, centroid: Vectors, label: str, now: datetime
) -> dict[str, Any]:
    """A cluster's stored summary: size, people, score, and the evidence a task shows."""
    found = score.score_cluster(0, members, vectors, centroid, label, now)
    quotes = [
        {"text": _clip(members[i].text), "url": members[i].url, "item": getattr(members[i], "id", None)}
        for i in found.quotes
    ]
    details = {
        "explanation": found.explain(),
        "quotes": quotes,
        "trend": found.trend,
        "first_seen": _day(found.first_seen),
        "last_seen": _day(found.last_seen),
        "daily": daily_counts(members, now),
        "severity": found.severity_kinds,
        "spike": {"z": round(found.spike.z, 2), "recent": found.spike.recent, "flagged": found.spike.flagged},
        "engagement": found.engagement,
    }
    return {
        "label": label or "(unnamed)", "centroid": centroid, "size": found.items, "reporters": found.people,
        "score": found.score, "details": details,
    }  # fmt: skip


def nearest(query: int, texts: list[str], vectors: Vectors, top: int) -> list[tuple[int, float]]:
    """The items most like item ``query`` by the hybrid similarity, best first (never itself)."""
    return [(match.index, match.score) for match in SimilarityIndex(texts, vectors).nearest(query, top)]


def daily_counts(members: Sequence[Item], now: datetime) -> list[int]:
    """Items per day over the last SPARK_DAYS days, oldest first (for the trend sparkline)."""
    today = now.astimezone(UTC).date()
    counts = Counter(item.at.astimezone(UTC).date() for item in members if item.at is not None)
    return [counts.get(today - timedelta(days=back), 0) for back in range(SPARK_DAYS - 1, -1, -1)]


def _clip(text: str, limit: int = 280) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _day(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).date().isoformat() if moment else None
