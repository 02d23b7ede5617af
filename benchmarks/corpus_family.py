"""A family of synthetic clustered multi-vector corpora for index recall benchmarks.

Token vectors (dim 128, unit length) are noisy copies of shared "concepts"; concepts are
grouped into topics with Zipf-weighted use inside each topic; every document draws its
tokens from 1-3 topics (a primary topic and secondary ones). Queries target one
document and either restate it (half the tokens reuse the target's own concepts),
paraphrase it (the target's concepts expressed through "synonyms": fixed perturbations
of the concepts, so no query token repeats a document token) or name a few of its rare
concepts (keyword queries). Parameters that vary across the family (see ``FAMILY``):

* document length (20-1,000 tokens, uniform or log-uniform) and query length (4-64);
* number of topics (per document count, or fixed) and their concentration (Zipf
  popularity of topics), Zipf exponent of concepts inside a topic;
* topics per document (1-3) and the share of the primary topic;
* the query style (restate / paraphrase / keyword) and its noise;
* near-duplicate documents (edited copies of earlier documents).

``CorpusSpec()`` (the ``"base"`` member) reproduces the corpus of
``index_strategies.py`` exactly (same random stream), so earlier figures stay comparable.
Corpora are generated document by document (``iter_documents``) and written to disk
in chunks (``write_corpus``), so 100,000 documents (~10M token vectors) never sit in memory.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 128


@dataclass(frozen=True)
class CorpusSpec:
    """Generator parameters; the defaults are ``index_strategies.py``'s corpus."""

    doc_tokens: tuple[int, int] = (60, 140)
    log_uniform_lengths: bool = False
    n_concepts: int = 4096
    docs_per_topic: int = 25  # n_topics = max(min_topics, n_docs // docs_per_topic)
    min_topics: int = 20
    concepts_per_topic: int = 48
    concept_zipf: float = 0.8
    topic_zipf: float = 0.0  # popularity of topics; 0 = uniform
    topics_per_doc: tuple[int, int] = (2, 2)
    primary_share: float = 0.7
    doc_noise: float = 0.7
    near_duplicates: float = 0.0  # share of documents that are edited copies
    query_tokens: tuple[int, int] = (32, 32)
    query_style: str = "restate"  # "restate" | "paraphrase" | "keyword"
    query_noise: float = 0.9
    own_share: float = 0.5  # restate/paraphrase: share of tokens from the target's concepts

    def describe(self) -> str:
        """The fields that differ from the base corpus."""
        base = CorpusSpec()
        diff = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(base, f.name)
        }
        return ", ".join(f"{k}={v}" for k, v in diff.items()) or "base"


FAMILY: dict[str, CorpusSpec] = {
    # index_strategies.py's corpus: 60-140 tokens, 2 topics, 32-token restating queries
    "base": CorpusSpec(),
    # the corpus: Zipf concepts, 1-3 topics per document, paraphrasing queries
    "paraphrase": CorpusSpec(topics_per_doc=(1, 3), query_style="paraphrase"),
    "short-docs": CorpusSpec(doc_tokens=(20, 60), topics_per_doc=(1, 3), query_tokens=(8, 16)),
    "long-docs": CorpusSpec(
        doc_tokens=(300, 1000), topics_per_doc=(1, 3), query_style="paraphrase"
    ),
    "mixed-lengths": CorpusSpec(
        doc_tokens=(20, 1000), log_uniform_lengths=True, topics_per_doc=(1, 3)
    ),
    "few-topics": CorpusSpec(
        docs_per_topic=10**9,
        min_topics=24,
        topic_zipf=1.0,
        topics_per_doc=(1, 3),
        query_style="paraphrase",
    ),
    "many-concepts": CorpusSpec(
        n_concepts=32768, concepts_per_topic=192, topics_per_doc=(1, 3), query_style="paraphrase"
    ),
    "many-topics": CorpusSpec(docs_per_topic=4, topics_per_doc=(1, 3), concept_zipf=1.2),
    "keyword-queries": CorpusSpec(
        topics_per_doc=(1, 3), query_style="keyword", query_tokens=(4, 8), query_noise=0.5
    ),
    "long-queries": CorpusSpec(
        topics_per_doc=(1, 3), query_style="paraphrase", query_tokens=(48, 64)
    ),
    "near-duplicates": CorpusSpec(
        topics_per_doc=(1, 3), near_duplicates=0.3, query_style="paraphrase"
    ),
}


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class _Generator:
    """Shared state of one corpus: concepts, topics, documents' topics and concepts."""

    def __init__(self, spec: CorpusSpec, n_docs: int, seed: int) -> None:
        self.spec, self.n_docs = spec, n_docs
        self.rng = rng = np.random.default_rng(seed)
        self.concepts = _normalise(rng.standard_normal((spec.n_concepts, DIM)))
        self.n_topics = max(spec.min_topics, n_docs // spec.docs_per_topic)
        per_topic = spec.concepts_per_topic
        self.topic_concepts = rng.integers(0, spec.n_concepts, size=(self.n_topics, per_topic))
        weights = 1.0 / np.arange(1, per_topic + 1) ** spec.concept_zipf
        self.weights = weights / weights.sum()
        lo, hi = spec.topics_per_doc
        if spec.topic_zipf == 0 and lo == hi:  # the base corpus's random stream
            self.doc_topics = rng.integers(0, self.n_topics, size=(n_docs, lo))
            self.doc_n_topics = np.full(n_docs, lo)
        else:
            popularity = 1.0 / np.arange(1, self.n_topics + 1) ** spec.topic_zipf
            popularity = popularity[rng.permutation(self.n_topics)]
            self.doc_topics = rng.choice(
                self.n_topics, size=(n_docs, hi), p=popularity / popularity.sum()
            )
            self.doc_n_topics = rng.integers(lo, hi + 1, size=n_docs)
        self.doc_concepts: list[np.ndarray] = []

    def _topic_of_tokens(self, n: int, n_topics: int) -> np.ndarray:
        """Index (into the document's topics) of each of ``n`` tokens."""
        u = self.rng.random(n)
        if n_topics == 1:
            return np.zeros(n, dtype=np.int64)
        share = self.spec.primary_share
        if n_topics == 2:  # the base corpus's stream
            return (u > share).astype(np.int64)
        rest = np.minimum(
            ((u - share) / (1 - share) * (n_topics - 1)).astype(np.int64), n_topics - 2
        )
        return np.where(u <= share, 0, 1 + rest)

    def _concepts_of(self, picks: np.ndarray) -> np.ndarray:
        """A Zipf-weighted concept of each picked topic."""
        ranks = self.rng.choice(len(self.weights), size=picks.size, p=self.weights)
        return self.topic_concepts[picks, ranks]

    def _length(self, bounds: tuple[int, int], log_uniform: bool) -> int:
        lo, hi = bounds
        if log_uniform:
            return int(np.exp(self.rng.uniform(np.log(lo), np.log(hi + 1))))
        return int(self.rng.integers(lo, hi + 1))

    def documents(self) -> Iterator[np.ndarray]:
        spec, rng = self.spec, self.rng
        previous: list[np.ndarray] = []
        for i in range(self.n_docs):
            topics = self.doc_topics[i, : self.doc_n_topics[i]]
            if spec.near_duplicates and i and rng.random() < spec.near_duplicates:
                doc, ids = self._near_copy(previous, topics)
            else:
                n = self._length(spec.doc_tokens, spec.log_uniform_lengths)
                picks = topics[self._topic_of_tokens(n, len(topics))]
                ids = self._concepts_of(picks)
                noise = rng.standard_normal((n, DIM))
                doc = _normalise(self.concepts[ids] + spec.doc_noise * noise / np.sqrt(DIM))
            self.doc_concepts.append(ids)
            if spec.near_duplicates:
                previous.append(doc)
            yield doc

    def _near_copy(
        self, previous: list[np.ndarray], topics: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """An earlier document with ~10% of its tokens dropped or redrawn, lightly perturbed."""
        rng = self.rng
        j = int(rng.integers(0, len(previous)))
        source, ids = previous[j], self.doc_concepts[j].copy()
        keep = rng.random(len(source)) > 0.05
        keep[0] = True
        doc, ids = source[keep].copy(), ids[keep]
        redraw = rng.random(len(doc)) < 0.05
        if redraw.any():
            picks = topics[self._topic_of_tokens(int(redraw.sum()), len(topics))]
            new_ids = self._concepts_of(picks)
            noise = rng.standard_normal((picks.size, DIM))
            doc[redraw] = self.concepts[new_ids] + self.spec.doc_noise * noise / np.sqrt(DIM)
            ids[redraw] = new_ids
        return _normalise(doc + 0.1 * rng.standard_normal(doc.shape) / np.sqrt(DIM)), ids

    def queries(self, n_queries: int) -> list[np.ndarray]:
        """Queries for random target documents (call after :meth:`documents` is exhausted)."""
        spec, rng = self.spec, self.rng
        targets = rng.integers(0, self.n_docs, size=n_queries)
        vectors = self.concepts
        if spec.query_style == "paraphrase":  # one fixed "other word" per concept
            noise = rng.standard_normal(self.concepts.shape)
            vectors = _normalise(self.concepts + noise / np.sqrt(DIM))
        counts = None
        if spec.query_style == "keyword":  # concept frequencies over the corpus
            counts = np.bincount(np.concatenate(self.doc_concepts), minlength=spec.n_concepts)
        out = []
        for target in targets.tolist():
            lo, hi = spec.query_tokens
            n = lo if lo == hi else self._length((lo, hi), False)
            own = self.doc_concepts[target]
            if counts is not None:  # a few of the target's rarest concepts
                distinct = np.unique(own)
                rare = distinct[np.argsort(counts[distinct], kind="stable")][:n]
                ids = rare[rng.integers(0, len(rare), size=n)]
            else:
                topics = self.doc_topics[target, : self.doc_n_topics[target]]
                picks = topics[self._topic_of_tokens(n, len(topics))]
                ids = self._concepts_of(picks)
                reuse = rng.random(n) < spec.own_share
                ids[reuse] = own[rng.integers(0, len(own), size=int(reuse.sum()))]
            noise = rng.standard_normal((n, DIM))
            out.append(_normalise(vectors[ids] + spec.query_noise * noise / np.sqrt(DIM)))
        return out


def iter_documents(
    spec: CorpusSpec, n_docs: int, n_queries: int, seed: int = 0
) -> tuple[Iterator[np.ndarray], _Generator]:
    """Documents one by one; afterwards ``generator.queries(n_queries)`` gives the queries."""
    gen = _Generator(spec, n_docs, seed)
    return gen.documents(), gen


def make_corpus(
    spec: CorpusSpec, n_docs: int, n_queries: int, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Documents and queries in memory (small corpora)."""
    docs_iter, gen = iter_documents(spec, n_docs, n_queries, seed)
    docs = list(docs_iter)
    return docs, gen.queries(n_queries)


# ---------------------------------------------------------------------------- storage


def write_corpus(folder: Path, spec: CorpusSpec, n_docs: int, n_queries: int, seed: int = 0) -> int:
    """Stream documents to ``folder/docs.*`` and queries to ``folder/queries.*``; token count."""
    folder.mkdir(parents=True, exist_ok=True)
    docs_iter, gen = iter_documents(spec, n_docs, n_queries, seed)
    n_tokens = _write_stream(folder / "docs", docs_iter)
    _write_stream(folder / "queries", iter(gen.queries(n_queries)))
    return n_tokens


def _write_stream(path: Path, arrays: Iterator[np.ndarray]) -> int:
    """Append float32 rows to ``path.tokens.f32``; ``path.offsets.npy`` marks documents."""
    offsets = [0]
    with open(path.with_suffix(".tokens.f32"), "wb") as handle:
        for array in arrays:
            handle.write(np.ascontiguousarray(array, dtype=np.float32).tobytes())
            offsets.append(offsets[-1] + len(array))
    np.save(path.with_suffix(".offsets.npy"), np.asarray(offsets, dtype=np.int64))
    return offsets[-1]


def save_ragged(path: Path, arrays: list[np.ndarray]) -> None:
    """Write in-memory arrays in the :func:`load_ragged` layout."""
    _write_stream(path, iter(arrays))


def load_packed(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``tokens (N, DIM)`` float32 (memory-mapped) and ``offsets (n + 1,)``."""
    offsets = np.load(path.with_suffix(".offsets.npy"), allow_pickle=False)
    n = int(offsets[-1])
    if n == 0:
        return np.zeros((0, DIM), dtype=np.float32), offsets
    tokens = np.memmap(path.with_suffix(".tokens.f32"), dtype=np.float32, mode="r", shape=(n, DIM))
    return tokens, offsets


def load_ragged(path: Path) -> list[np.ndarray]:
    """Views into the memory-mapped file (the corpus is not copied)."""
    tokens, offsets = load_packed(path)
    return [tokens[a:b] for a, b in itertools.pairwise(offsets.tolist())]
