"""Child process of the ColLFM2 throughput benchmark: one implementation, one checkpoint.

``--impl ours`` runs :func:`sauerkraut_rag.load_encoder` (project venv);
``--impl reference`` runs ``sauerkrautlm-colpali`` 0.1.0's ``ColLFM2`` +
``ColLFM2Processor`` (the throwaway venv of ``tests/fixtures/make_collfm2_golden.py``),
with its base model built from the local config (float32, SDPA) instead of the hub
download with flash-attention its ``__init__`` asks for.  See ``_page_bench.worker_main``.
"""

from __future__ import annotations

from typing import Any

from _page_bench import Encode, main_with_reference, reference_encode


def load_reference(checkpoint: str) -> Encode:
    from sauerkrautlm_colpali.models.lfm2.collfm2 import modeling_collfm2, processing_collfm2
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration

    class LocalBase:
        """Stand-in for AutoModelForImageTextToText: base_model is a local folder."""

        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> Lfm2VlForConditionalGeneration:
            config = Lfm2VlConfig.from_pretrained(name, attn_implementation="sdpa")
            return Lfm2VlForConditionalGeneration(config)

    modeling_collfm2.AutoModelForImageTextToText = LocalBase  # type: ignore[attr-defined]
    model = modeling_collfm2.ColLFM2.from_pretrained(checkpoint).float().eval()
    processor = processing_collfm2.ColLFM2Processor.from_pretrained(checkpoint)
    return reference_encode(processor, model)


if __name__ == "__main__":
    main_with_reference(load_reference)
