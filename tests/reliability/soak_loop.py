"""A bounded soak loop: mixed add / search / delete on a large synthetic index.

Shared by ``tests/reliability/test_soak.py`` (slow) and ``benchmarks/soak.py``. The loop
keeps the live corpus at its starting size (every add is followed by a delete of the
oldest documents), compacts when tombstones reach 10 % of the live documents (as a
long-running service would), and closes and reopens the index now and then.

Resident memory (``VmRSS``) and open file descriptors are sampled after every
iteration. Memory in such a loop is periodic: it grows while tombstones pile up, falls
at each compaction and reopen, and single cycles differ by +-10 % (allocator reuse), so
the figures are envelopes over several compaction cycles: warm-up is the first
``WARMUP_CYCLES`` cycles, and growth compares the peak over the last ``WINDOW_CYCLES``
cycles with the peak over the ``WINDOW_CYCLES`` cycles right after warm-up. Linux only
(reads ``/proc/self``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

DIM = 128
FDE = {"num_repetitions": 4, "num_simhash_projections": 3, "projection_dim": 8}
"""A small MUVERA setting (256 floats per document) so the 20k-document build is quick."""
BUILD_BATCH = 1000
BATCH = 50
"""Documents added (and deleted) per iteration."""
QUERIES_PER_ITERATION = 8
COMPACT_TOMBSTONE_SHARE = 0.1
"""Compact once tombstones reach this share of the live documents."""
REOPEN_EVERY = 150
"""Iterations between close + reopen of the index."""
WARMUP_CYCLES = 2
"""Compaction cycles treated as warm-up (caches, allocator pools and the graph fill)."""
WINDOW_CYCLES = 3
"""Compaction cycles per measurement window (after warm-up, and at the end)."""
MIN_CYCLES = WARMUP_CYCLES + 2 * WINDOW_CYCLES - 1
"""Compactions needed for two windows that do not overlap (the last cycle is partial)."""


def rss_bytes() -> int:
    """Resident set size of this process (``VmRSS``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmRSS not found in /proc/self/status")


def rss_parts() -> tuple[int, int]:
    """``(RssAnon, RssFile)`` in bytes: heap and anonymous maps vs. file pages mapped in
    (memory-mapped segments, shared libraries)."""
    parts = {"RssAnon:": 0, "RssFile:": 0}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key = line.split(":", 1)[0] + ":"
            if key in parts:
                parts[key] = int(line.split()[1]) * 1024
    return parts["RssAnon:"], parts["RssFile:"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def heap_parts() -> tuple[int, int]:
    """``(in use, free but kept)`` bytes of glibc's main malloc arena (``mallinfo2``):
    memory the program holds vs. freed memory the allocator has not returned; ``(0, 0)``
    without glibc 2.33+. Other threads' arenas are not included (run with
    ``MALLOC_ARENA_MAX=1`` to see everything)."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return 0, 0
    fn.restype = _MallInfo2
    info = fn()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


def open_fds() -> int:
    """Number of open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def synthetic_docs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` documents of 4..16 unit token vectors ``(n_tokens, DIM)``, float32."""
    lengths = rng.integers(4, 17, size=n)
    flat = rng.standard_normal((int(lengths.sum()), DIM)).astype(np.float32)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    return np.split(flat, np.cumsum(lengths)[:-1])


@dataclass
class Sample:
    """One measurement: seconds since the loop started, compaction cycle (compactions
    so far), RSS bytes, open fds, memory-mapped vector segments (each map holds one fd;
    small segments are copied into memory instead), live documents, the RSS split
    into anonymous memory and mapped file pages, and the main malloc arena's bytes in
    use and freed-but-kept (:func:`heap_parts`)."""

    t: float
    cycle: int
    rss: int
    fds: int
    segments: int
    docs: int
    rss_anon: int = 0
    rss_file: int = 0
    heap_used: int = 0
    heap_free: int = 0

    @property
    def other_fds(self) -> int:
        """Descriptors not held by a segment's memory map (SQLite, lock file, ...)."""
        return self.fds - self.segments


@dataclass
class SoakReport:
    """Counts and the memory / descriptor figures of one soak run."""

    docs: int
    seconds: float
    build_seconds: float
    iterations: int = 0
    added: int = 0
    deleted: int = 0
    searches: int = 0
    compactions: int = 0
    reopens: int = 0
    samples: list[Sample] = field(default_factory=list)

    def to_json(self) -> str:
        """The whole report (samples included) as JSON."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SoakReport:
        data = json.loads(text)
        data["samples"] = [Sample(**s) for s in data["samples"]]
        return cls(**data)

    def peak(self, cycles: range, what: str = "rss") -> int:
        """Largest ``rss``, ``fds`` or ``other_fds`` sampled during the compaction ``cycles``."""
        values = [getattr(s, what) for s in self.samples if s.cycle in cycles]
        if not values:
            raise ValueError(
                f"no samples in cycles {cycles.start}..{cycles.stop - 1}: the run had only "
                f"{self.compactions} compactions; run it longer"
            )
        return max(values)

    @property
    def after_warmup(self) -> range:
        """The ``WINDOW_CYCLES`` compaction cycles right after warm-up."""
        return range(WARMUP_CYCLES, WARMUP_CYCLES + WINDOW_CYCLES)

    @property
    def at_end(self) -> range:
        """The last ``WINDOW_CYCLES`` cycles (the final one cut short by the time limit)."""
        first = max(self.after_warmup.stop, self.compactions + 1 - WINDOW_CYCLES)
        return range(first, self.compactions + 1)

    @property
    def rss_after_warmup(self) -> int:
        return self.peak(self.after_warmup)

    @property
    def rss_at_end(self) -> int:
        return self.peak(self.at_end)

    @property
    def rss_growth(self) -> float:
        """Relative growth of the per-cycle RSS peak from after warm-up to the end."""
        return self.rss_at_end / self.rss_after_warmup - 1.0

    @property
    def fds_after_warmup(self) -> int:
        """Peak of descriptors not held by segment maps, in the first cycle after warm-up."""
        return self.peak(self.after_warmup, "other_fds")

    @property
    def fds_at_end(self) -> int:
        """Peak of descriptors not held by segment maps, in the last cycles."""
        return self.peak(self.at_end, "other_fds")


def run_soak(folder: Path, *, seconds: float, docs: int = 20_000, seed: int = 0) -> SoakReport:
    """Build a ``docs``-document index in ``folder`` and churn it for ``seconds``.

    Every iteration adds ``BATCH`` new documents, runs ``QUERIES_PER_ITERATION``
    searches (a third with a metadata filter) and deletes the ``BATCH`` oldest
    documents. Each search's hits must be live documents, best first; the final index
    must hold exactly the expected ids. Raises ``AssertionError`` otherwise.
    """
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    live: deque[str] = deque()
    next_id = 0
    options = {"strategy": "fde", "fde": FDE, "ef_construction": 64, "hnsw_m": 12}
    index = VoyagerIndex.create(folder, dim=DIM, **options)
    try:
        for lo in range(0, docs, BUILD_BATCH):
            n = min(BUILD_BATCH, docs - lo)
            ids = [f"doc-{next_id + i}" for i in range(n)]
            metas = [{"group": (next_id + i) % 7} for i in range(n)]
            index.add(ids, synthetic_docs(rng, n), metas)
            live.extend(ids)
            next_id += n
    finally:
        index.close()
    report = SoakReport(docs=docs, seconds=seconds, build_seconds=time.perf_counter() - started)
    index = VoyagerIndex.open(folder)
    try:
        t0 = time.perf_counter()
        while (now := time.perf_counter() - t0) < seconds:
            report.samples.append(_sample(now, report, index))
            next_id = _iteration(index, rng, live, next_id, report)
            if report.iterations % REOPEN_EVERY == 0:
                index.close()
                index = VoyagerIndex.open(folder, verify=False)
                report.reopens += 1
        report.samples.append(_sample(seconds, report, index))
        stored = set(index._snap.id_to_pos)
        assert stored == set(live), (len(stored), len(live))
    finally:
        index.close()
    return report


def _sample(now: float, report: SoakReport, index: VoyagerIndex) -> Sample:
    mapped = sum(1 for s in index._snap.segments if s.data.mapped)
    anon, file = rss_parts()
    used, free = heap_parts()
    return Sample(
        now, report.compactions, rss_bytes(), open_fds(), mapped, len(index), anon, file, used, free
    )


def _iteration(
    index: VoyagerIndex,
    rng: np.random.Generator,
    live: deque[str],
    next_id: int,
    report: SoakReport,
) -> int:
    """One add / search / delete round (plus compaction when due); returns the next id."""
    ids = [f"doc-{next_id + i}" for i in range(BATCH)]
    index.add(ids, synthetic_docs(rng, BATCH), [{"group": (next_id + i) % 7} for i in range(BATCH)])
    live.extend(ids)
    report.added += BATCH
    queries = synthetic_docs(rng, QUERIES_PER_ITERATION)
    for q, query in enumerate(queries):
        flt = {"group": int(rng.integers(0, 7))} if q % 3 == 0 else None
        hits = index.search([query], 10, filter=flt)[0]
        scores = [h.score for h in hits]
        assert len(hits) == 10 and scores == sorted(scores, reverse=True)
        assert all(h.id in index for h in hits)
        assert flt is None or all(h.metadata["group"] == flt["group"] for h in hits)
    report.searches += len(queries)
    gone = [live.popleft() for _ in range(BATCH)]
    assert index.delete(gone) == BATCH
    report.deleted += BATCH
    stats = index.stats()
    if stats["tombstones"] >= COMPACT_TOMBSTONE_SHARE * stats["documents"]:
        index.compact()
        report.compactions += 1
    report.iterations += 1
    return next_id + BATCH
