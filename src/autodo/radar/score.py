"""Rank clusters by how many people they hurt and how badly, keeping the parts so a task can say why.

    score = people * (1 + severity) * (1 + negativity) * (1 + 0.1 ln(1 + engagement)) * (1.5 if spiking)

- people: distinct author hashes; an item without an author counts as one person of its own;
- severity: the mean over items of their worst severity keyword's weight (crash, data loss, security
  1.0; payment, login 0.8; "not working" and the like 0.5), so one crash report in a hundred
  posts about colours adds 0.01, not 1;
- negativity: the mean over items of a low star rating, or of a small word list where there is no
  rating (no model to download);
- engagement: votes, likes and replies, log-scaled so one viral post does not outrank many people;
- spike: distinct reporters per day in the recent window against the days before it, flagged only
  when the z-score *and* the count both reach their minimum (as SentiSum alerts do): a quiet
  cluster going from 0 to 2 posts is not news, and neither is a busy one with its usual 40.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np

from autodo.radar.embed import Vectors
from autodo.radar.items import Item
from autodo.radar.similar import text_key

Trend = Literal["rising", "steady", "falling"]

ENGAGEMENT_WEIGHT = 0.1
SPIKE_BOOST = 1.5
QUOTES = 3

# (weight, phrases): an item's severity is the weight of the worst kind it mentions.
SEVERITY: dict[str, tuple[float, tuple[str, ...]]] = {
    "crash": (1.0, ("crash", "crashes", "crashed", "crashing", "freezes", "frozen", "force close", "won't open")),
    "data loss": (
        1.0,
        ("data loss", "lost data", "lost my", "lost all", "deleted my", "disappeared", "wiped", "corrupted"),
    ),
    "security": (
        1.0,
        ("security", "hacked", "breach", "leaked", "vulnerability", "exploit", "unauthorized", "unauthorised", "fraud"),
    ),
    "payment": (
        0.8,
        ("payment", "charged", "overcharged", "double charge", "refund", "billing", "billed", "subscription"),
    ),
    "login": (
        0.8,
        ("login", "log in", "sign in", "signin", "locked out", "password", "2fa", "can't access", "cannot access"),
    ),
    "broken": (0.5, ("broken", "not working", "doesn't work", "does not work", "error", "fails", "failed", "stuck")),
}

NEGATIVE_WORDS = frozenset(
    (
        "angry", "annoying", "annoyed", "awful", "bad", "buggy", "disappointed", "disappointing", "frustrated",
        "frustrating", "garbage", "hate", "hated", "horrible", "joke", "laggy", "mess", "pathetic", "poor", "rubbish",
        "ruined", "sad", "scam", "slow", "terrible", "trash", "unacceptable", "unusable", "useless", "waste", "worse",
        "worst",
    )
)  # fmt: skip
POSITIVE_WORDS = frozenset(
    (
        "amazing", "awesome", "best", "brilliant", "excellent", "fantastic", "glad", "good", "great", "happy",
        "helpful", "love", "loved", "nice", "perfect", "smooth", "thanks", "thank", "wonderful",
    )
)  # fmt: skip
NEGATORS = frozenset(
    ("not", "no", "never", "isn't", "wasn't", "don't", "doesn't", "didn't", "can't", "cannot", "won't")
)


@dataclass(frozen=True)
class SpikeRule:
    """When a cluster's recent volume is a spike: both a z-score and a count must reach their minimum."""

    recent_days: int = 2
    baseline_days: int = 28
    min_z: float = 3.0
    min_count: int = 5


@dataclass(frozen=True)
class Spike:
    """The recent window against the baseline before it, in distinct reporters per day."""

    z: float
    recent: int  # reporters in the recent window
    baseline_per_day: float
    flagged: bool


@dataclass(frozen=True)
class ClusterScore:
    """A cluster's rank and the parts it is made of."""

    cluster: int
    label: str
    score: float
    items: int  # every member, duplicates included
    people: int  # distinct authors, each anonymous item counted as one
    severity: float
    severity_kinds: dict[str, int]  # kind -> items that mention it
    negativity: float
    engagement: int
    spike: Spike
    trend: Trend
    first_seen: datetime | None
    last_seen: datetime | None
    quotes: list[int] = field(default_factory=list)  # item positions, closest to the centroid first

    def explain(self) -> str:
        """One line that says why the cluster ranks where it does."""
        parts = [f"{self.people} {'person' if self.people == 1 else 'people'}", f"{self.items} items"]
        if self.severity_kinds:
            kinds = ", ".join(f"{kind}: {count}" for kind, count in self.severity_kinds.items())
            parts.append(f"severity {self.severity:.2f} ({kinds})")
        parts.append(f"{self.negativity:.0%} negative")
        if self.engagement:
            parts.append(f"{self.engagement} engagements")
        if self.spike.flagged:
            parts.append(f"spike: {self.spike.recent} reporters recently, z = {self.spike.z:.1f}")
        parts.append(self.trend)
        return " · ".join(parts)


def rank_clusters(
    items: Sequence[Item],
    labels: Sequence[int],
    vectors: Vectors,
    centroids: Vectors,
    names: Sequence[str] = (),
    now: datetime | None = None,
    rule: SpikeRule | None = None,
) -> list[ClusterScore]:
    """Every cluster scored, highest first; `labels` gives each item's cluster (a duplicate's is its original's)."""
    members: dict[int, list[int]] = {}
    for position, cluster in enumerate(labels):
        members.setdefault(int(cluster), []).append(position)
    moment = now or datetime.now(UTC)
    scores = []
    for cluster, positions in members.items():
        name = names[cluster] if cluster < len(names) else ""
        found = score_cluster(
            cluster, [items[i] for i in positions], vectors[positions], centroids[cluster], name, moment, rule
        )
        scores.append(replace(found, quotes=[positions[quote] for quote in found.quotes]))
    return sorted(scores, key=lambda score: (-score.score, score.cluster))


def score_cluster(
    cluster: int,
    items: Sequence[Item],
    vectors: Vectors,
    centroid: Vectors,
    label: str = "",
    now: datetime | None = None,
    rule: SpikeRule | None = None,
) -> ClusterScore:
    """One cluster's score from its members (duplicates included); quotes are positions in `items`."""
    moment, rule = now or datetime.now(UTC), rule or SpikeRule()
    people = count_people(items)
    severity, kinds = cluster_severity(items)
    negativity = float(np.mean([item_negativity(item) for item in items])) if items else 0.0
    engagement = sum(max(item.engagement, 0) for item in items)
    spike = spike_signal(items, moment, rule)
    total = people * (1 + severity) * (1 + negativity) * (1 + ENGAGEMENT_WEIGHT * math.log1p(engagement))
    dates = [item.at for item in items if item.at is not None]
    return ClusterScore(
        cluster=cluster, label=label, score=round(total * (SPIKE_BOOST if spike.flagged else 1.0), 4),
        items=len(items), people=people, severity=round(severity, 4), severity_kinds=kinds,
        negativity=round(negativity, 4), engagement=engagement, spike=spike, trend=trend(items, moment, rule),
        first_seen=min(dates, default=None), last_seen=max(dates, default=None),
        quotes=representatives(items, vectors, centroid),
    )  # fmt: skip


def count_people(items: Sequence[Item]) -> int:
    """Distinct authors; an item without an author is somebody we cannot tell apart, so counts once itself."""
    return len({item.author for item in items if item.author}) + sum(1 for item in items if not item.author)


def item_severity(text: str) -> tuple[float, list[str]]:
    """The weight of the worst kind of harm the text mentions, and every kind it mentions."""
    lowered = _plain(text)
    kinds = [kind for kind, pattern in _SEVERITY_PATTERNS.items() if pattern.search(lowered)]
    return max((SEVERITY[kind][0] for kind in kinds), default=0.0), kinds


def cluster_severity(items: Sequence[Item]) -> tuple[float, dict[str, int]]:
    """The mean item severity, and how many items mention each kind (most first)."""
    weights: list[float] = []
    kinds: Counter[str] = Counter()
    for item in items:
        weight, mentioned = item_severity(item.text)
        weights.append(weight)
        kinds.update(mentioned)
    return (float(np.mean(weights)) if weights else 0.0), dict(kinds.most_common())


def item_negativity(item: Item) -> float:
    """0 (content) to 1 (angry): from the star rating when there is one, else from the word lists."""
    if item.rating is not None:
        return min(1.0, max(0.0, (5.0 - item.rating) / 4.0))
    return text_negativity(item.text)


def text_negativity(text: str) -> float:
    """Negative words less positive ones, halved and clipped to 0..1; "not good" is negative, "not bad" neither."""
    words = re.findall(r"[a-z']+", _plain(text))
    balance = 0
    for previous, word in zip(["", *words], words, strict=False):
        negated = previous in NEGATORS
        if word in NEGATIVE_WORDS:
            balance += 0 if negated else 1
        elif word in POSITIVE_WORDS:
            balance += 1 if negated else -1
    return min(1.0, max(0.0, balance / 2.0))


def spike_signal(items: Sequence[Item], now: datetime, rule: SpikeRule) -> Spike:
    """The recent window's reporters per day as a z-score against the baseline days before it.

    Days are counted in distinct reporters, so one person posting twenty times is one. With an empty
    or flat baseline the spread is taken as 1 per day (a Poisson count of 1), so a brand-new cluster
    needs as many reporters as `min_count` anyway.
    """
    daily = _daily_reporters(items)
    today = _utc(now).date()
    recent = [daily.get(today - timedelta(days=back), 0) for back in range(rule.recent_days)]
    baseline = [daily.get(today - timedelta(days=back), 0) for back in range(rule.recent_days, _span(rule))]
    mean = float(np.mean(baseline)) if baseline else 0.0
    spread = max(float(np.std(baseline)) if baseline else 0.0, 1.0)
    z = (float(np.mean(recent)) - mean) / (spread / math.sqrt(rule.recent_days))
    return Spike(round(z, 3), sum(recent), round(mean, 3), z >= rule.min_z and sum(recent) >= rule.min_count)


def trend(items: Sequence[Item], now: datetime, rule: SpikeRule) -> Trend:
    """Rising or falling when the recent reporters per day are at least half again, or at most half, the baseline's."""
    daily = _daily_reporters(items)
    today = _utc(now).date()
    recent = sum(daily.get(today - timedelta(days=back), 0) for back in range(rule.recent_days)) / rule.recent_days
    baseline_days = range(rule.recent_days, _span(rule))
    baseline = sum(daily.get(today - timedelta(days=back), 0) for back in baseline_days) / rule.baseline_days
    if recent >= 1.5 * baseline and recent * rule.recent_days >= 2:
        return "rising"
    if baseline > 0 and recent <= 0.5 * baseline:
        return "falling"
    return "steady"


def representatives(items: Sequence[Item], vectors: Vectors, centroid: Vectors, count: int = QUOTES) -> list[int]:
    """The items closest to the centroid, preferring different people and different wording."""
    order = np.argsort(-(vectors @ centroid), kind="stable") if len(items) else np.zeros(0, dtype=np.int64)
    chosen: list[int] = []
    for distinct_people in (True, False):
        for position in (int(p) for p in order):
            if len(chosen) == count:
                return chosen
            if position not in chosen and _new_voice(items, chosen, position, distinct_people):
                chosen.append(position)
    return chosen


def _new_voice(items: Sequence[Item], chosen: list[int], position: int, distinct_people: bool) -> bool:
    candidate = items[position]
    if any(text_key(items[other].text) == text_key(candidate.text) for other in chosen):
        return False
    return not distinct_people or not candidate.author or all(items[o].author != candidate.author for o in chosen)


def _daily_reporters(items: Sequence[Item]) -> Counter[date]:
    """Distinct reporters per UTC day; anonymous items count one each."""
    seen: set[tuple[date, str]] = set()
    daily: Counter[date] = Counter()
    for position, item in enumerate(items):
        if item.at is None:
            continue
        day = _utc(item.at).date()
        who = item.author or f"anonymous {position}"
        if (day, who) not in seen:
            seen.add((day, who))
            daily[day] += 1
    return daily


def _span(rule: SpikeRule) -> int:
    return rule.recent_days + rule.baseline_days


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _plain(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def _phrases(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern per kind; whole words only, so "error" does not match "terror"."""
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(phrase) for phrase in phrases) + r")(?![\w'])")


_SEVERITY_PATTERNS = {kind: _phrases(phrases) for kind, (_, phrases) in SEVERITY.items()}
