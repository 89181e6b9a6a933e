"""Group feedback vectors without being told how many groups there are, and name each group.

Agglomerative clustering that stops merging at a distance threshold, so the number of groups comes
out of the data. Average linkage and Ward are both *reducible*: a merge never brings two clusters
closer to a third than the nearer of the two was. Three things follow, and this module rests on them:

- the nearest-neighbour chain finds the same merges as the textbook algorithm, in O(m²) time;
- a cluster whose nearest neighbour is past the threshold is final and can leave the matrix;
- a cluster is fully described by its mean vector and size (the average cosine distance between two
  sets of unit vectors is `1 - mean_a · mean_b`, and Ward's cost is a function of means and sizes),
  so chunks of a few thousand items are clustered apart and their clusters merged afterwards:
  memory stays O(chunk²) however many items there are.

Measured on banking77 (10,003 support messages, 77 intents; `bench/radar.py`): average linkage at
cosine distance 0.55 on corpus-centred vectors meets ARI ≥ 0.48 and NMI ≥ 0.80; Ward does not reach
NMI 0.80 at any threshold there, and its threshold has to grow with the number of items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import CountVectorizer  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder  # type: ignore[import-untyped]

Vectors = NDArray[np.float32]
Floats = NDArray[np.float64]
Labels = NDArray[np.int64]
Linkage = Literal["average", "ward"]

LINKAGE: Linkage = "average"
# Average cosine distance on centred vectors. Clustering all of banking77 at once, 0.50 misses the
# ARI floor (0.466) and 0.60 both floors (0.477, NMI 0.798); 0.55 gives ARI 0.492, NMI 0.806.
THRESHOLD = 0.55
CHUNK = 4096  # items per agglomeration: its distance matrix is 128 MB of float64
# Rounds of chunks first form tight clusters only, at these fractions of the threshold, so a merge
# that would look different with the whole corpus in view is left to a later round. Starting at 0.6
# keeps banking77's ARI and NMI within 0.003 of clustering all 10,003 at once (starting at 1.0 loses
# 0.017 of each); at 100,000 reworded copies, five steps hold ARI 0.49 and NMI 0.80.
CHUNK_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 1.0)
STALLED = 0.8  # a round of chunks that keeps 80% of its clusters apart will not shrink the rest either
SEED = 77  # chunks are drawn at random, so a corpus sorted by topic or time does not split a topic
# The corpus mean is an estimate: over a handful of items it is mostly those items, and centring on
# it would push two paraphrases apart. It is shrunk towards zero by n / (n + 50).
ORIGIN_PRIOR = 50
BLOCK = 1024  # rows per block when comparing many vectors with every cluster
LABEL_TERMS = 3


@dataclass(frozen=True)
class Clustering:
    """Which cluster each vector is in, and each cluster's sum and size, so new items can join later."""

    labels: Labels  # cluster per vector; `cluster` numbers them largest first, `extend` appends
    sums: Floats  # (k, 384) sums of the members' centred vectors
    counts: Labels
    origin: Vectors  # what the vectors were centred on; kept fixed so later items are comparable
    threshold: float = THRESHOLD
    linkage: Linkage = LINKAGE

    @property
    def means(self) -> Floats:
        """Each cluster's mean centred vector: `1 - mean · x` is x's average cosine distance to its members."""
        means: Floats = self.sums / np.maximum(self.counts, 1)[:, None]
        return means

    @property
    def centroids(self) -> Vectors:
        """Each cluster's direction as a unit vector in the encoder's space."""
        directions = self.means + self.origin
        norms = np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
        centroids: Vectors = (directions / norms).astype(np.float32)
        return centroids

    def members(self, cluster: int) -> list[int]:
        return [int(index) for index in np.flatnonzero(self.labels == cluster)]


def cluster(
    vectors: Vectors,
    threshold: float = THRESHOLD,
    linkage: Linkage = LINKAGE,
    chunk: int = CHUNK,
    origin: Vectors | None = None,
) -> Clustering:
    """Cluster unit vectors until the linkage distance passes the threshold; memory O(chunk²) whatever n is.

    The vectors are centred on `origin`, by default their own mean (see `corpus_origin`); pass an
    existing clustering's origin to group items that joined none of its clusters alike.
    """
    origin = corpus_origin(vectors) if origin is None else origin
    points = centre(vectors, origin)
    return _clustering(points, _cluster_points(points, threshold, linkage, chunk), origin, threshold, linkage)


def corpus_origin(vectors: Vectors) -> Vectors:
    """The corpus mean, shrunk towards zero when there are few items (see ORIGIN_PRIOR)."""
    if len(vectors) == 0:
        return np.zeros(vectors.shape[-1], dtype=np.float32)
    mean = vectors.mean(axis=0, dtype=np.float64) * len(vectors) / (len(vectors) + ORIGIN_PRIOR)
    origin: Vectors = mean.astype(np.float32)
    return origin


def centre(vectors: Vectors, origin: Vectors) -> Floats:
    """Subtract the origin and re-normalise.

    Sentence vectors of one corpus share a large common direction (its norm is 0.47 on banking77).
    Taking it out lets what sets one topic apart count: on banking77 the best threshold without it
    reaches NMI 0.799, with it 0.806, at about the same ARI.
    """
    shifted = vectors.astype(np.float64) - origin
    norms = np.maximum(np.linalg.norm(shifted, axis=1, keepdims=True), 1e-12)
    centred: Floats = shifted / norms
    return centred


def assign(vectors: Vectors, clustering: Clustering) -> list[int | None]:
    """The existing cluster each new vector joins: its nearest by the clustering's linkage, if within its threshold."""
    if len(vectors) == 0 or len(clustering.counts) == 0:
        return [None] * len(vectors)
    existing = _Summaries(clustering.means, np.asarray(clustering.counts, dtype=np.float64))
    points = centre(vectors, clustering.origin)
    found = _nearest_within(points, np.ones(len(points)), existing, clustering.threshold, clustering.linkage)
    return [int(label) if label >= 0 else None for label in found]


def extend(clustering: Clustering, vectors: Vectors, chunk: int = CHUNK) -> Clustering:
    """New items join their nearest cluster within the threshold; the rest are clustered among themselves.

    Existing clusters keep their numbers and new ones are numbered after them. The origin stays as
    it was: re-cluster from scratch now and then to follow a corpus whose centre has moved.
    """
    joined = np.array([-1 if label is None else label for label in assign(vectors, clustering)], dtype=np.int64)
    points = centre(vectors, clustering.origin)
    leftovers = np.flatnonzero(joined < 0)
    fresh = _cluster_points(points[leftovers], clustering.threshold, clustering.linkage, chunk)
    joined[leftovers] = fresh + len(clustering.counts)
    return add_members(clustering, points, joined)


def add_members(clustering: Clustering, points: Floats, labels: Labels) -> Clustering:
    """Count centred vectors into their clusters (new cluster numbers grow the arrays): the centroid update."""
    total = max(len(clustering.counts), int(labels.max()) + 1 if len(labels) else 0)
    sums = np.zeros((total, clustering.sums.shape[1] if clustering.sums.ndim == 2 else points.shape[1]))
    sums[: len(clustering.counts)] = clustering.sums
    np.add.at(sums, labels, points)
    counts = np.bincount(labels, minlength=total) + np.pad(clustering.counts, (0, total - len(clustering.counts)))
    return replace(clustering, labels=np.concatenate([clustering.labels, labels]), sums=sums, counts=counts)


def agglomerate(means: Floats, sizes: Floats, threshold: float, linkage: Linkage) -> Labels:
    """Merge clusters, given as means and sizes, while the linkage distance is at most the threshold."""
    distances = _initial_distances(means, sizes, linkage)
    sizes = sizes.astype(np.float64).copy()
    parent = np.arange(len(means))
    active = np.ones(len(means), dtype=bool)
    limit = threshold if linkage == "average" else threshold**2  # Ward's costs are kept squared
    chain: list[int] = []
    while active.any():
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        here = chain[-1]
        nearest = int(np.argmin(distances[here]))
        if distances[here, nearest] > limit:
            _retire(distances, active, here)  # reducible: it can only get farther from everything
            chain.pop()
        elif len(chain) > 1 and distances[here, chain[-2]] <= distances[here, nearest]:
            other = chain[-2]
            del chain[-2:]
            _merge(distances, sizes, here, other, linkage)
            _retire(distances, active, other)
            parent[other] = here
        else:
            chain.append(nearest)
    return _flatten(parent)


@dataclass(frozen=True)
class _Summaries:
    """Clusters as their mean vector and size: all that average linkage and Ward need."""

    means: Floats
    sizes: Floats


def _cluster_points(points: Floats, threshold: float, linkage: Linkage, chunk: int) -> Labels:
    """Labels 0..k-1 for centred vectors: rounds of chunks while there are too many, then one pass over all."""
    summaries = _Summaries(points, np.ones(len(points)))
    owner: Labels = np.arange(len(points), dtype=np.int64)
    rng = np.random.default_rng(SEED)
    for fraction in _chunk_fractions():
        if len(summaries.sizes) <= chunk:
            break
        merged = _cluster_in_chunks(summaries, threshold * fraction, linkage, chunk, rng)
        if merged.max() + 1 > STALLED * len(summaries.sizes):
            break
        owner, summaries = merged[owner], _combine(summaries, merged)
    final: Labels = _final_pass(summaries, threshold, linkage, chunk)[owner]
    return final


def _chunk_fractions() -> list[float]:
    rounds = 64  # far more than needed: each round shrinks the count by at least STALLED
    return [*CHUNK_THRESHOLDS, *[CHUNK_THRESHOLDS[-1]] * rounds]


def _cluster_in_chunks(
    summaries: _Summaries, threshold: float, linkage: Linkage, chunk: int, rng: np.random.Generator
) -> Labels:
    count = len(summaries.sizes)
    labels = np.empty(count, dtype=np.int64)
    offset = 0
    for part in np.array_split(rng.permutation(count), math.ceil(count / chunk)):
        local = agglomerate(summaries.means[part], summaries.sizes[part], threshold, linkage)
        labels[part] = local + offset
        offset += int(local.max()) + 1
    return labels


def _combine(summaries: _Summaries, labels: Labels) -> _Summaries:
    """The summaries of the unions: sizes add up, means are size-weighted."""
    count = int(labels.max()) + 1
    sizes = np.bincount(labels, weights=summaries.sizes, minlength=count).astype(np.float64)
    sums = np.zeros((count, summaries.means.shape[1]))
    np.add.at(sums, labels, summaries.means * summaries.sizes[:, None])
    return _Summaries(sums / sizes[:, None], sizes)


def _final_pass(summaries: _Summaries, threshold: float, linkage: Linkage, chunk: int) -> Labels:
    """Agglomerate what is left; past the chunk size the largest only, and the rest join them or stay apart."""
    count = len(summaries.sizes)
    if count <= chunk:
        return agglomerate(summaries.means, summaries.sizes, threshold, linkage)
    largest = np.argsort(-summaries.sizes, kind="stable")[:chunk]
    head_labels = agglomerate(summaries.means[largest], summaries.sizes[largest], threshold, linkage)
    head = _combine(_Summaries(summaries.means[largest], summaries.sizes[largest]), head_labels)
    rest = np.setdiff1d(np.arange(count), largest)
    nearest = _nearest_within(summaries.means[rest], summaries.sizes[rest], head, threshold, linkage)
    labels = np.empty(count, dtype=np.int64)
    labels[largest] = head_labels
    labels[rest] = np.where(nearest >= 0, nearest, np.cumsum(nearest < 0) - 1 + len(head.sizes))
    return labels


def _nearest_within(means: Floats, sizes: Floats, clusters: _Summaries, threshold: float, linkage: Linkage) -> Labels:
    """Each summary's nearest cluster by the linkage distance, or -1 when none is within the threshold."""
    found = np.full(len(means), -1, dtype=np.int64)
    for start in range(0, len(means), BLOCK):
        block = slice(start, start + BLOCK)
        distances = _linkage_distances(means[block], sizes[block], clusters, linkage)
        best = np.argmin(distances, axis=1)
        close = distances[np.arange(len(best)), best] <= threshold
        found[block] = np.where(close, best, -1)
    return found


def _linkage_distances(means: Floats, sizes: Floats, clusters: _Summaries, linkage: Linkage) -> Floats:
    products = means @ clusters.means.T
    if linkage == "average":
        distances: Floats = 1.0 - products
        return distances
    squares = np.einsum("ij,ij->i", means, means)[:, None] + np.einsum("ij,ij->i", clusters.means, clusters.means)
    weights = 2.0 * np.outer(sizes, clusters.sizes) / (sizes[:, None] + clusters.sizes[None, :])
    ward: Floats = np.sqrt(weights * np.maximum(squares - 2.0 * products, 0.0))
    return ward


def _initial_distances(means: Floats, sizes: Floats, linkage: Linkage) -> Floats:
    if linkage == "average":
        distances: Floats = 1.0 - means @ means.T
    else:
        # Ward's cost 2ab/(a+b) · |mean_a - mean_b|², squared so that Lance-Williams stays linear.
        squares = np.einsum("ij,ij->i", means, means)
        gaps = np.maximum(squares[:, None] + squares[None, :] - 2.0 * (means @ means.T), 0.0)
        distances = 2.0 * np.outer(sizes, sizes) / (sizes[:, None] + sizes[None, :]) * gaps
    np.fill_diagonal(distances, np.inf)
    return distances


def _merge(distances: Floats, sizes: Floats, into: int, other: int, linkage: Linkage) -> None:
    """Lance-Williams: the merged cluster's distance to every other, written into row and column `into`."""
    a, b = sizes[into], sizes[other]
    if linkage == "average":
        row = (a * distances[into] + b * distances[other]) / (a + b)
    else:
        c = sizes
        row = ((a + c) * distances[into] + (b + c) * distances[other] - c * distances[into, other]) / (a + b + c)
    row[into] = np.inf
    distances[into] = row
    distances[:, into] = row
    sizes[into] = a + b


def _retire(distances: Floats, active: NDArray[np.bool_], index: int) -> None:
    distances[index] = np.inf
    distances[:, index] = np.inf
    active[index] = False


def _flatten(parent: NDArray[np.int64]) -> Labels:
    """Follow merge pointers to their roots, and number the roots 0..k-1."""
    roots = parent.copy()
    while not np.array_equal(roots[roots], roots):
        roots = roots[roots]
    labels: Labels = np.unique(roots, return_inverse=True)[1].astype(np.int64).reshape(-1)
    return labels


def _clustering(points: Floats, owner: Labels, origin: Vectors, threshold: float, linkage: Linkage) -> Clustering:
    """Number the clusters largest first and total their members."""
    counts = np.bincount(owner) if len(owner) else np.zeros(0, dtype=np.int64)
    rank = np.empty(len(counts), dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    labels = rank[owner]
    sums = np.zeros((len(counts), points.shape[1]))
    np.add.at(sums, labels, points)
    return Clustering(labels, sums, np.bincount(labels, minlength=len(counts)), origin, threshold, linkage)


def label_clusters(texts: Sequence[str], labels: Sequence[int] | Labels, terms: int = LABEL_TERMS) -> list[str]:
    """A short name per cluster from its most distinctive words (c-TF-IDF): "card arrival · delivery · order"."""
    count = int(np.max(labels)) + 1 if len(labels) else 0
    chosen = top_terms(texts, labels, terms)
    return [" · ".join(chosen[cluster]) or _fallback(texts, labels, cluster) for cluster in range(count)]


def top_terms(texts: Sequence[str], labels: Sequence[int] | Labels, terms: int = LABEL_TERMS) -> list[list[str]]:
    """Each cluster's words and two-word phrases ranked by class-based TF-IDF, as BERTopic names its topics.

    A term's weight is its share of the cluster's words times log(1 + average words per cluster /
    the term's count in all clusters): frequent here, rare elsewhere.
    """
    labels = np.asarray(labels, dtype=np.int64)
    count = int(labels.max()) + 1 if len(labels) else 0
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    try:
        words = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words, digits and punctuation
        return [[] for _ in range(count)]
    membership = OneHotEncoder(categories=[np.arange(count)], sparse_output=True).fit_transform(labels[:, None])
    weights = _c_tf_idf((membership.T @ words).tocsr())
    vocabulary: NDArray[np.str_] = vectorizer.get_feature_names_out()
    return [_distinct_terms(vocabulary, weights.getrow(cluster), terms) for cluster in range(count)]


def _c_tf_idf(per_cluster: Any) -> Any:
    """Sparse (clusters x terms) weights: a dense matrix would be clusters x vocabulary, gigabytes at 100,000 posts."""
    totals = np.asarray(per_cluster.sum(axis=1), dtype=np.float64).reshape(-1)
    term_totals = np.asarray(per_cluster.sum(axis=0), dtype=np.float64).reshape(-1)
    idf = np.log1p(totals.mean() / np.maximum(term_totals, 1.0))
    return per_cluster.multiply(1.0 / np.maximum(totals, 1.0)[:, None]).multiply(idf[None, :]).tocsr()


def _distinct_terms(vocabulary: NDArray[np.str_], row: Any, terms: int) -> list[str]:
    """The best terms, skipping one whose word stems repeat, or are repeated by, a term already chosen."""
    chosen: list[tuple[str, set[str]]] = []
    for position in np.argsort(-row.data, kind="stable")[: terms * 10]:
        term = str(vocabulary[row.indices[position]])
        stems = {_stem(word) for word in term.split()}
        if not any(stems <= other or other <= stems for _, other in chosen):
            chosen.append((term, stems))
        if len(chosen) == terms:
            break
    return [term for term, _ in chosen]


def _stem(word: str) -> str:
    """Crude on purpose: "rates", "rate"; "activating", "activation": six letters tell a label's near-repeats."""
    return word.removesuffix("s")[:6]


def _fallback(texts: Sequence[str], labels: Sequence[int] | Labels, cluster: int) -> str:
    first = next((text for text, label in zip(texts, labels, strict=True) if label == cluster), "")
    return " ".join(first.split())[:40] or "(no text)"
