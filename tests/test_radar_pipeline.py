"""The radar's computation: the numpy MiniLM encoder, duplicates, clusters, scores, and quality floors on real data.

The quality tests read the evaluation data next to the project (`../shared/data`, see its README)
and use fixed samples small enough for CI; the full-data figures are in `bench/radar.py`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.cluster import AgglomerativeClustering  # type: ignore[import-untyped]
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # type: ignore[import-untyped]

from autodo.radar.clusters import agglomerate, assign, cluster, extend, label_clusters
from autodo.radar.embed import DIMENSIONS, Encoder, Vectors
from autodo.radar.items import Item
from autodo.radar.score import (
    SpikeRule,
    count_people,
    item_negativity,
    rank_clusters,
    representatives,
    score_cluster,
    spike_signal,
    trend,
)
from autodo.radar.similar import SimilarityIndex, deduplicate, exact_duplicates, link_duplicates

pytestmark = pytest.mark.storeless  # never opens the store: runs once, in the SQLite pass

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder.shared()


def item(text: str, author: str | None = None, days_ago: float = 0.0, **fields: object) -> Item:
    return Item.model_validate(
        {"source": "test", "source_id": f"{text}-{author}-{days_ago}", "body": text, "author": author,
         "at": NOW - timedelta(days=days_ago), **fields}
    )  # fmt: skip


def unit(*values: float) -> Vectors:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[: len(values)] = values
    normalised: Vectors = vector / np.linalg.norm(vector)
    return normalised


# The encoder


def test_vectors_are_384_unit_length_floats(encoder: Encoder) -> None:
    vectors = encoder.encode(["The app crashes when I open settings", "Love the new dark mode"])
    assert vectors.shape == (2, DIMENSIONS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similarities_match_the_published_sentence_transformers_figures(encoder: Encoder) -> None:
    # From the sentence-transformers documentation for all-MiniLM-L6-v2 (computed there with torch).
    published = [
        ("The new movie is awesome", "The new movie is so great", 0.8939),
        ("A man is eating food.", "A man is eating a piece of bread.", 0.7553),
        ("The cat sits outside", "The dog plays in the garden", 0.2838),
    ]
    for first, second, similarity in published:
        vectors = encoder.encode([first, second])
        assert float(vectors[0] @ vectors[1]) == pytest.approx(similarity, abs=5e-4)


def test_encoding_is_deterministic_and_independent_of_batch_order(encoder: Encoder) -> None:
    texts = [f"feedback number {n}: " + "the export button " * (n % 7) for n in range(70)]
    forward = encoder.encode(texts)
    backward = encoder.encode(texts[::-1])[::-1]
    alone = np.vstack([encoder.encode([text]) for text in texts[:5]])
    np.testing.assert_array_equal(forward, encoder.encode(texts))
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    np.testing.assert_allclose(forward[:5], alone, atol=1e-6)


def test_a_paraphrase_is_closer_than_an_unrelated_text(encoder: Encoder) -> None:
    crash, paraphrase, unrelated = encoder.encode(
        ["The app crashes every time I open it", "It keeps crashing on startup", "Please add a purple theme"]
    )
    assert float(crash @ paraphrase) > float(crash @ unrelated) + 0.3


def test_a_text_past_256_tokens_is_cut_there(encoder: Encoder) -> None:
    long, cut, shorter = encoder.encode(["word " * 1000, "word " * 254, "word " * 200])  # 254 + [CLS] + [SEP]
    np.testing.assert_allclose(long, cut, atol=1e-6)
    assert not np.allclose(long, shorter, atol=1e-4)


def test_an_empty_text_has_a_vector(encoder: Encoder) -> None:
    empty, blank = encoder.encode(["", "   "])
    assert np.linalg.norm(empty) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(empty, blank, atol=1e-6)
    assert encoder.encode([]).shape == (0, DIMENSIONS)


# Similarity and duplicates


def test_exact_duplicates_ignore_case_accents_punctuation_and_spacing() -> None:
    texts = ["App crashes on login!", "app  crashes on LOGIN", "Äpp crashes on login.", "App crashes on logout"]
    assert exact_duplicates(texts) == [0, 0, 0, 3]


def test_nearest_ranks_the_paraphrase_first_and_never_the_query(encoder: Encoder) -> None:
    texts = ["Payment failed with error 402", "Dark mode please", "My card payment fails, error 402", "Export to CSV"]
    index = SimilarityIndex(texts, encoder.encode(texts), encoder)
    found = index.nearest(0, top=3)
    assert found[0].index == 2 and 0 not in {match.index for match in found}
    assert found[0].score > found[1].score >= found[2].score
    assert index.nearest("card payment error 402", top=1)[0].index in (0, 2)


def test_a_rewording_is_a_near_duplicate_and_a_different_complaint_is_not(encoder: Encoder) -> None:
    items = [
        item("How long does delivery to the US take?", "a"),
        item("How long does the delivery to the US take?", "b"),
        item("Why did my delivery to the US take so long?", "c"),
    ]
    found = deduplicate(items, encoder)
    assert found.canonical == [0, 0, 2]
    assert [(d.index, d.of, d.reason) for d in found.duplicates] == [(1, 0, "similar")]
    assert found.kept == [0, 2]
    np.testing.assert_allclose(found.vectors, encoder.encode([i.text for i in items]), atol=1e-6)


def test_one_person_repeating_themselves_in_a_thread_is_one_item(encoder: Encoder) -> None:
    items = [
        item("The upload keeps failing", "alice", thread="t1"),
        item("Upload failed again, third time today", "alice", thread="t1"),
        item("Also the icons look blurry", "alice", thread="t1"),
        item("Upload failed again, third time today", "bob", thread="t2"),
    ]
    found = deduplicate(items, encoder)
    reasons = {d.index: (d.of, d.reason) for d in found.duplicates}
    assert reasons[1] == (0, "same author and thread")
    assert 2 not in reasons  # a different complaint by the same person stays an item
    assert reasons[3] == (1, "exact")  # a duplicate is kept as a link, never dropped...
    assert found.canonical[3] == 0  # ...and belongs where its original belongs
    np.testing.assert_array_equal(found.vectors[3], found.vectors[1])


def test_a_copy_of_a_duplicate_links_to_the_kept_item(encoder: Encoder) -> None:
    texts = [
        "How long does delivery to the US take?",
        "How long does the delivery to the US take?",
        "how long does the delivery to the us take",
    ]
    found = link_duplicates(texts, encoder.encode(texts))
    assert [(d.index, d.of, d.reason) for d in found] == [(1, 0, "similar"), (2, 0, "exact")]


def test_only_items_from_start_are_linked(encoder: Encoder) -> None:
    texts = ["Refund not showing up", "refund not showing up!", "Refund not showing up."]
    found = link_duplicates(texts, encoder.encode(texts), start=2)
    assert [(d.index, d.of, d.reason) for d in found] == [(2, 0, "exact")]


# Clusters


def test_agglomeration_matches_scikit_learn() -> None:
    points = _blobs(count=240, spread=0.6)
    for linkage, threshold, options in [("average", 0.5, {"metric": "cosine"}), ("ward", 2.0, {})]:
        ours = agglomerate(points.astype(np.float64), np.ones(len(points)), threshold, linkage)  # type: ignore[arg-type]
        theirs = AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold, linkage=linkage, **options
        ).fit_predict(points)
        assert adjusted_rand_score(theirs, ours) == 1.0


def test_clustering_in_chunks_finds_the_groups_without_being_told_how_many() -> None:
    points = _blobs(count=600, spread=0.25)
    truth = np.repeat(np.arange(6), 100)
    whole, chunked = cluster(points), cluster(points, chunk=128)
    assert len(whole.counts) == 6 and adjusted_rand_score(truth, whole.labels) == 1.0
    assert adjusted_rand_score(truth, chunked.labels) > 0.95
    assert list(chunked.counts) == sorted(chunked.counts, reverse=True)


def test_a_new_item_joins_the_nearest_cluster_within_the_threshold() -> None:
    points = _blobs(count=300, spread=0.25)
    clustering = cluster(points)
    near, far = _blobs(count=300, spread=0.25, seed=9)[0], unit(*([0.0] * 50), 1.0)
    joined = assign(np.vstack([near, far]), clustering)
    assert joined[0] == clustering.labels[0] and joined[1] is None


def test_extending_keeps_cluster_numbers_and_groups_the_leftovers() -> None:
    points = _blobs(count=300, spread=0.25)
    clustering = cluster(points)
    newcomers = np.vstack([points[:4], _far_blob(5)])
    grown = extend(clustering, newcomers)
    k = len(clustering.counts)
    assert list(grown.labels[:300]) == list(clustering.labels)
    assert list(grown.labels[300:304]) == list(clustering.labels[:4])
    assert set(grown.labels[304:]) == {k}  # the five strangers form one new cluster
    assert grown.counts[k] == 5 and grown.counts.sum() == 309
    assert float(grown.centroids[k] @ _far_blob(1)[0]) > 0.9


def test_clusters_are_named_by_their_distinctive_words() -> None:
    texts = ["card arrival is late", "my card has not arrived", "card arrival tracking"]
    texts += ["refund not received", "where is my refund", "refund still pending"]
    names = label_clusters(texts, [0, 0, 0, 1, 1, 1])
    assert "card" in names[0] and "refund" in names[1]
    assert names[0].count("·") <= 2


# Scores


def test_one_person_posting_five_times_counts_once() -> None:
    posts = [item(f"crash number {n}", "same-person") for n in range(5)] + [item("crash", None), item("crash", None)]
    assert count_people(posts) == 3


def test_severity_raises_the_score() -> None:
    vectors = np.vstack([unit(1.0)] * 3)
    mild = score_cluster(0, [item("the colour is odd", w) for w in "abc"], vectors, unit(1.0), now=NOW)
    severe = score_cluster(1, [item("it crashed and I lost my data", w) for w in "abc"], vectors, unit(1.0), now=NOW)
    assert severe.score > mild.score and severe.severity == 1.0 and mild.severity == 0.0
    assert set(severe.severity_kinds) == {"crash", "data loss"}
    assert "crash: 3" in severe.explain()


def test_a_spike_needs_both_the_z_score_and_the_minimum_count() -> None:
    rule = SpikeRule(recent_days=2, baseline_days=28, min_z=3.0, min_count=6)
    quiet_then_loud = [item("x", f"p{n}", days_ago=0.1) for n in range(8)] + [item("x", "old", days_ago=10)]
    quiet_then_five = [item("x", f"p{n}", days_ago=0.1) for n in range(5)]
    busy = [item("x", f"p{d}-{n}", days_ago=d + 0.1) for d in range(30) for n in range(8)]
    assert spike_signal(quiet_then_loud, NOW, rule).flagged
    few = spike_signal(quiet_then_five, NOW, rule)
    assert few.z >= 3.0 and not few.flagged  # a high z alone is not news
    usual = spike_signal(busy, NOW, rule)
    assert usual.recent >= 6 and not usual.flagged  # nor is a busy cluster's usual volume
    assert trend(quiet_then_loud, NOW, rule) == "rising" and trend(busy, NOW, rule) == "steady"


def test_one_person_posting_twenty_times_in_a_day_is_no_spike() -> None:
    posts = [item(f"bug {n}", "loud-person", days_ago=0.1) for n in range(20)]
    assert spike_signal(posts, NOW, SpikeRule()).recent == 1


def test_negativity_comes_from_the_rating_or_else_the_words() -> None:
    assert item_negativity(item("great app", rating=1)) == 1.0
    assert item_negativity(item("terrible, useless update")) == 1.0
    assert item_negativity(item("not bad at all")) == 0.0
    assert item_negativity(item("works, thanks")) == 0.0


def test_quotes_are_the_closest_items_from_different_people() -> None:
    posts = [item("sync fails", "a"), item("sync fails again", "a"), item("sync broken", "b"), item("sync?", "c")]
    vectors = np.vstack([unit(1.0, 0.0), unit(1.0, 0.05), unit(1.0, 0.2), unit(1.0, 0.9)])
    assert representatives(posts, vectors, unit(1.0)) == [0, 2, 3]


def test_clusters_rank_by_people_and_quote_by_global_position() -> None:
    posts = [item("dark mode", f"p{n}") for n in range(4)] + [item("app crashes", "q1"), item("app crashes", "q1")]
    labels = [0, 0, 0, 0, 1, 1]
    vectors = np.vstack([unit(1.0)] * 4 + [unit(0.0, 1.0)] * 2)
    ranked = rank_clusters(posts, labels, vectors, np.vstack([unit(1.0), unit(0.0, 1.0)]), ["dark", "crash"], NOW)
    assert [(score.cluster, score.people) for score in ranked] == [(0, 4), (1, 1)]
    assert ranked[1].quotes == [4] and ranked[1].label == "crash"


# Quality floors on fixed samples of real data (the full data: bench/radar.py)


def test_banking77_sample_clusters_at_the_issue_floors(encoder: Encoder) -> None:
    # 15 messages from each of the 77 intents (1,155), seed 0. Measured: ARI 0.496, NMI 0.838,
    # 193 clusters. The issue's floors for the full 10,003 are ARI 0.48 and NMI 0.80.
    texts, intents = _banking77_sample(per_intent=15, seed=0)
    found = cluster(encoder.encode(texts))
    assert adjusted_rand_score(intents, found.labels) >= 0.48
    assert normalized_mutual_info_score(intents, found.labels) >= 0.80
    assert 77 < len(found.counts) < 400


def test_gitbugs_sample_finds_known_duplicates(encoder: Encoder) -> None:
    # The 129 Hadoop bugs with a known duplicate among 150 others drawn with seed 0 (279 texts).
    # Measured: MRR 0.825, Recall@10 0.953. With all 2,503 bugs the issue asks for 0.60 and 0.84.
    texts, relevant = _gitbugs_sample(others=150, seed=0)
    index = SimilarityIndex(texts, encoder.encode(texts))
    ranks = [_rank_of_first(index, query, good) for query, good in relevant.items()]
    assert float(np.mean([1.0 / rank for rank in ranks])) >= 0.78
    assert float(np.mean([rank <= 10 for rank in ranks])) >= 0.92


def _rank_of_first(index: SimilarityIndex, query: int, relevant: set[int]) -> int:
    ranked = index.nearest(query, top=len(index))
    return next(rank for rank, match in enumerate(ranked, start=1) if match.index in relevant)


def _data(path: str) -> Path:
    found = DATA / path
    if not found.is_file():
        pytest.fail(f"evaluation data missing: {found}; the shared data folder belongs next to the project")
    return found


def _banking77_sample(per_intent: int, seed: int) -> tuple[list[str], list[str]]:
    with _data("banking77/train.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    rng = np.random.default_rng(seed)
    intents = sorted({row["category"] for row in rows})
    chosen: list[int] = []
    for intent in intents:
        members = [n for n, row in enumerate(rows) if row["category"] == intent]
        chosen += [int(n) for n in rng.choice(members, per_intent, replace=False)]
    chosen.sort()
    return [rows[n]["text"] for n in chosen], [rows[n]["category"] for n in chosen]


def _gitbugs_sample(others: int, seed: int) -> tuple[list[str], dict[int, set[int]]]:
    """Bug texts (summary + 600 characters of description) and, per query bug, the positions of its duplicates."""
    with _data("gitbugs/hadoop_bugs.csv").open(newline="", encoding="utf-8") as file:
        bugs = list(csv.DictReader(file))
    position = {bug["Issue id"].strip(): n for n, bug in enumerate(bugs)}
    pairs: dict[int, set[int]] = defaultdict(set)
    with _data("gitbugs/hadoop_bugs-combined.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            first = row["Issue id"].strip()
            for second in (part.strip() for part in row["Duplicate id"].split(",")):
                if first in position and second in position and first != second:
                    pairs[position[first]].add(position[second])
                    pairs[position[second]].add(position[first])
    rest = sorted(set(range(len(bugs))) - set(pairs))
    rng = np.random.default_rng(seed)
    chosen = sorted([*pairs, *(int(n) for n in rng.choice(rest, others, replace=False))])
    where = {bug: n for n, bug in enumerate(chosen)}
    texts = [bugs[n]["Summary"] + "\n" + (bugs[n]["Description"] or "")[:600] for n in chosen]
    return texts, {where[query]: {where[other] for other in good} for query, good in pairs.items()}


def _blobs(count: int, spread: float, seed: int = 3) -> NDArray[np.float32]:
    """Six groups of unit vectors around orthogonal directions, `count // 6` each, in order."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIMENSIONS, dtype=np.float32)[:6] * 3.0
    points = np.repeat(centres, count // 6, axis=0) + rng.normal(0, spread, (count, DIMENSIONS)).astype(np.float32) / 8
    normalised: NDArray[np.float32] = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    return normalised


def _far_blob(count: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(11)
    points = np.zeros((count, DIMENSIONS), dtype=np.float32)
    points[:, 100] = 3.0
    points += rng.normal(0, 0.25, points.shape).astype(np.float32) / 8
    normalised: NDArray[np.float32] = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    return normalised
