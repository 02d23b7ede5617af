"""Child process of the ColQwen3 throughput benchmark: one implementation, one checkpoint.

``--impl ours`` runs :func:`sauerkraut_rag.load_encoder` (project venv);
``--impl reference`` runs ``sauerkrautlm-colpali`` 0.1.0's ``ColQwen3`` +
``ColQwen3Processor`` (the throwaway venv of ``tests/fixtures/make_colqwen3_golden.py``),
float32 with SDPA.  See ``_page_bench.worker_main``.
"""

from __future__ import annotations

from _page_bench import Encode, main_with_reference, reference_encode


def load_reference(checkpoint: str) -> Encode:
    import torch
    from sauerkrautlm_colpali.models.qwen3.colqwen3 import ColQwen3, ColQwen3Processor
    from transformers import Qwen2VLProcessor

    # Loading shim for transformers 5 (see tests/fixtures/make_colqwen3_golden.py).
    ColQwen3Processor.get_attributes = classmethod(lambda cls: Qwen2VLProcessor.get_attributes())
    model = ColQwen3.from_pretrained(
        checkpoint, dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    processor = ColQwen3Processor.from_pretrained(checkpoint)
    return reference_encode(processor, model)


if __name__ == "__main__":
    main_with_reference(load_reference)
