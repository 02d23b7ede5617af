"""Recall@10 of the default VoyagerIndex against exact MaxSim on the benchmark's corpus family.

The corpora come from ``benchmarks/corpus_family.py`` (the generator behind
``benchmarks/recall_family.py``): the default run uses shortened documents and the
corpora on which FDE candidates alone fell furthest; the slow run checks every corpus
at 3,000 documents, the size of the issue's measurements.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from sauerkraut_rag.retrievers.maxsim import maxsim, topk_from_scores
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex

GOAL = 0.99


def _family() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus_family.py"
    spec = importlib.util.spec_from_file_location("corpus_family", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("corpus_family", module)
    spec.loader.exec_module(module)
    return module


FAMILY = _family()


def _recall(tmp_path: Path, spec: object, n_docs: int, n_queries: int) -> float:
    docs, queries = FAMILY.make_corpus(spec, n_docs, n_queries, seed=1)
    truth = topk_from_scores(maxsim(queries, docs), 10)[0]
    with VoyagerIndex.create(tmp_path / "idx", dim=FAMILY.DIM) as index:
        assert n_docs > index.config.exact_threshold  # the approximate path is measured
        for lo in range(0, n_docs, 1000):
            ids = [str(i) for i in range(lo, min(lo + 1000, n_docs))]
            index.add(ids, docs[lo : lo + 1000])
        found = index.search(queries, 10)
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len({int(h.id) for h in f} & set(t.tolist())) / 10 for f, t in pairs]))


@pytest.mark.parametrize(
    "name", ["paraphrase", "keyword-queries", "few-topics", "many-concepts", "near-duplicates"]
)
def test_default_recall_on_short_document_corpora(tmp_path, name):
    spec = dataclasses.replace(FAMILY.FAMILY[name], doc_tokens=(20, 60))
    assert _recall(tmp_path, spec, 1500, 40) >= GOAL


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILY.FAMILY))
def test_default_recall_on_every_corpus_at_3000_documents(tmp_path, name):
    assert _recall(tmp_path, FAMILY.FAMILY[name], 3000, 100) >= GOAL
