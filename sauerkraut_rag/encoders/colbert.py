"""The PyLate ColBERT text model (e.g. ``VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m``).

Reproduces PyLate 1.6.0's ``ColBERT.encode``: the query or document prefix token
is inserted right after ``[CLS]``; queries are padded to ``query_length`` with the
mask token (query expansion) and keep every position; documents keep only
attended positions whose token is not in the skiplist (punctuation by default);
every kept vector goes through the Dense projection and is L2-normalised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sauerkraut_rag._checks import check_options, check_positive_int
from sauerkraut_rag.encoders._batching import run_length_sorted
from sauerkraut_rag.encoders._colbert_config import (
    ColBERTSettings,
    read_layout,
    read_settings,
    with_overrides,
)
from sauerkraut_rag.encoders._dense import DenseProjection
from sauerkraut_rag.encoders._hf_loading import load_pretrained_strict, load_tokenizer
from sauerkraut_rag.encoders._runtime import resolve_attention, resolve_device, resolve_dtype
from sauerkraut_rag.encoders._validation import check_texts
from sauerkraut_rag.encoders.base import MultiVectorEncoder
from sauerkraut_rag.errors import CheckpointError, InvalidInputError
from sauerkraut_rag.types import MultiVector

logger = logging.getLogger(__name__)

_NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default, as PyLate uses it
DEFAULT_MAX_BATCH_TOKENS = 8192
"""Padded tokens per forward pass: long documents run in small batches (see benchmarks)."""


def _unused_pooler(key: str) -> bool:
    """Pooler weights feed only the sentence-level output, which ColBERT never reads."""
    return key.startswith("pooler.")


class ColBERTEncoder(MultiVectorEncoder):
    """PyLate-format ColBERT: text queries and text documents to ``(n_tokens, dim)`` arrays.

    Build it with :func:`sauerkraut_rag.load_encoder` (or :meth:`from_folder`).
    ``settings`` holds the effective ColBERT options (prefixes, lengths, expansion).
    """

    modality = "text"
    family = "colbert"

    def __init__(
        self,
        *,
        name: str,
        backbone: nn.Module,
        projection: nn.Sequential,
        tokenizer: Any,
        settings: ColBERTSettings,
        device: torch.device,
        dtype: torch.dtype,
        user_set: frozenset[str] = frozenset(),
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        self.name = name
        self.max_batch_tokens = max_batch_tokens
        self.settings = settings
        self.device = device
        self.dtype = dtype
        self.tokenizer = tokenizer
        # HF fast tokenizers keep truncation settings as mutable state (and raise "Already
        # borrowed" when shared across threads): one tokenizer call at a time.
        self._tokenizer_lock = threading.Lock()
        self.backbone = backbone.to(device=device, dtype=dtype).eval()
        self.projection = projection.to(device=device, dtype=dtype).eval()
        self.dim = int(projection[-1].out_features)
        n_rows = int(self.backbone.get_input_embeddings().num_embeddings)
        self.query_prefix_id = self._prefix_id(
            settings.query_prefix, "query_prefix", n_rows, user_set
        )
        self.document_prefix_id = self._prefix_id(
            settings.document_prefix, "document_prefix", n_rows, user_set
        )
        self.pad_id = self._expansion_pad_id()
        skip = (tokenizer.convert_tokens_to_ids(w) for w in settings.skiplist_words)
        self._skiplist = torch.tensor(
            sorted({int(i) for i in skip if i is not None}), dtype=torch.long, device=device
        )
        self._padding_left = getattr(tokenizer, "padding_side", "right") == "left"
        self._token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        for key in ("query_length", "document_length"):
            self._check_length(key, user_set)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        name: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        do_query_expansion: bool | None = None,
        attend_to_expansion_tokens: bool | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        skiplist_words: Sequence[str] | None = None,
        attn_implementation: str | None = None,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        **unknown: Any,
    ) -> ColBERTEncoder:
        """Load a PyLate checkpoint folder (``modules.json`` + Transformer + ``1_Dense``).

        The ColBERT options default to ``config_sentence_transformers.json`` and then
        to PyLate's defaults; any option given here overrides both, as in PyLate's
        ``ColBERT(...)`` constructor.  ``revision`` is accepted for a uniform
        signature; the folder is already resolved.  ``max_batch_tokens`` caps the
        padded tokens of one forward pass on top of ``batch_size`` (``None``: no cap);
        it changes speed and memory, never the vectors.
        """
        check_options(
            unknown,
            (
                "query_length",
                "document_length",
                "do_query_expansion",
                "attend_to_expansion_tokens",
                "query_prefix",
                "document_prefix",
                "skiplist_words",
                "attn_implementation",
                "max_batch_tokens",
            ),
            what="the ColBERT text model",
        )
        if max_batch_tokens is not None:
            check_positive_int(max_batch_tokens, name="max_batch_tokens", hint=" Or pass None.")
        folder = Path(folder)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        attention = resolve_attention(attn_implementation)
        layout = read_layout(folder)
        overrides = {
            "query_length": query_length,
            "document_length": document_length,
            "do_query_expansion": do_query_expansion,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "skiplist_words": list(skiplist_words) if skiplist_words is not None else None,
        }
        settings = with_overrides(read_settings(folder, layout.transformer), overrides)
        projection = nn.Sequential(*(DenseProjection.from_folder(p) for p in layout.dense))
        backbone = load_pretrained_strict(
            layout.transformer,
            dtype=torch_dtype,
            attn_implementation=attention,
            trust_remote_code=trust_remote_code,
            may_be_missing=_unused_pooler,
        )
        hidden = int(backbone.get_input_embeddings().embedding_dim)
        if projection[0].in_features != hidden:
            raise CheckpointError(
                f"The Dense layer in {layout.dense[0]} expects {projection[0].in_features} "
                f"input features but the backbone's hidden size is {hidden}. The folders "
                "come from different checkpoints: download the complete model again."
            )
        tokenizer = load_tokenizer(layout.transformer, trust_remote_code=trust_remote_code)
        encoder = cls(
            name=name if name is not None else str(folder),
            backbone=backbone,
            projection=projection,
            tokenizer=tokenizer,
            settings=settings,
            device=torch_device,
            dtype=torch_dtype,
            user_set=frozenset(k for k, v in overrides.items() if v is not None),
            max_batch_tokens=max_batch_tokens,
        )
        encoder.checkpoint_folder = Path(folder)
        return encoder

    def _prefix_id(
        self, prefix: str, key: str, n_rows: int, user_set: frozenset[str]
    ) -> int | None:
        """Id of the prefix token, looked up verbatim (``"[Q] "`` with its trailing space)."""
        if prefix == "":
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(prefix)
        unk = self.tokenizer.unk_token_id
        if token_id is None or (token_id == unk and prefix != self.tokenizer.unk_token):
            error = InvalidInputError if key in user_set else CheckpointError
            raise error(
                f"The {key} {prefix!r} is not a token of this checkpoint's tokenizer (it would "
                "map to the unknown token). PyLate checkpoints store the prefixes as added "
                "tokens (added_tokens.json / tokenizer.json): use the complete checkpoint, or "
                "pass a prefix that is in the vocabulary ('' disables the prefix)."
            )
        if int(token_id) >= n_rows:
            raise CheckpointError(
                f"The {key} {prefix!r} has token id {token_id}, but the embedding table has "
                f"only {n_rows} rows. The tokenizer and the weights come from different "
                "checkpoints: download the complete model again."
            )
        return int(token_id)

    def _expansion_pad_id(self) -> int:
        """PyLate pads (and expands queries) with [MASK], else EOS, else the pad token."""
        for attr in ("mask_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self.tokenizer, attr, None)
            if value is not None:
                return int(value)
        raise CheckpointError(
            f"The tokenizer of {self.name} has no mask, EOS or pad token, so queries cannot "
            "be padded for query expansion. Use a PyLate checkpoint whose tokenizer defines "
            "[MASK]."
        )

    def _check_length(self, key: str, user_set: frozenset[str]) -> None:
        is_query = key == "query_length"
        length = getattr(self.settings, key)
        prefix = self.query_prefix_id if is_query else self.document_prefix_id
        minimum = self.tokenizer.num_special_tokens_to_add(pair=False) + 1 + (prefix is not None)
        error = InvalidInputError if key in user_set else CheckpointError
        if length < minimum:
            raise error(
                f"Expected {key} >= {minimum} (special tokens, prefix and one text token), "
                f"got {length}. Pass a larger {key}."
            )
        config = self.backbone.config
        limit = getattr(config, "max_position_embeddings", None)
        absolute = getattr(config, "position_embedding_type", None) == "absolute"
        if absolute and isinstance(limit, int) and length > limit:
            if key in user_set:
                raise InvalidInputError(
                    f"Expected {key} <= {limit} (the model's max_position_embeddings), got "
                    f"{length}. Pass {key}={limit} or smaller to load_encoder."
                )
            # PyLate would fail on any input longer than the position table; truncate instead.
            logger.warning(
                "%s: %s=%d from the checkpoint exceeds max_position_embeddings=%d; "
                "inputs are truncated to %d tokens.",
                self.name,
                key,
                length,
                limit,
                limit,
            )
            self.settings = replace(self.settings, **{key: limit})

    # ----------------------------------------------------------------- encoding
    def _encode_queries(
        self, texts: list[str], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        return self._encode(
            texts, is_query=True, batch_size=batch_size, show_progress=show_progress
        )

    def _encode_documents(
        self, items: Sequence[Any], *, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        texts = check_texts(items, what="documents")
        return self._encode(
            texts, is_query=False, batch_size=batch_size, show_progress=show_progress
        )

    def _prepare(self, text: str) -> str:
        """sentence-transformers' text handling: default prompt, strip, optional lowercase."""
        if self.settings.prompt is not None:
            text = self.settings.prompt + text
        text = text.strip()
        return text.lower() if self.settings.do_lower_case else text

    def _encode(
        self, texts: list[str], *, is_query: bool, batch_size: int, show_progress: bool | None
    ) -> list[MultiVector]:
        s = self.settings
        prefix_id = self.query_prefix_id if is_query else self.document_prefix_id
        length = s.query_length if is_query else s.document_length
        max_length = length - 1 if prefix_id is not None else length
        prepared = [self._prepare(t) for t in texts]
        with self._tokenizer_lock:
            encoded = self.tokenizer(
                prepared,
                truncation=True,
                max_length=max_length,
                padding=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
        pad_to = max_length if is_query and s.do_query_expansion else None

        def encode_batch(batch: list[list[int]]) -> list[MultiVector]:
            return self._forward(batch, is_query=is_query, prefix_id=prefix_id, pad_to=pad_to)

        extra = 0 if prefix_id is None else 1
        widths = [(pad_to if pad_to is not None else len(ids)) + extra for ids in encoded]
        return run_length_sorted(
            encoded,
            widths,
            encode_batch,
            batch_size=batch_size,
            show_progress=show_progress,
            desc="Encoding queries" if is_query else "Encoding documents",
            max_batch_tokens=self.max_batch_tokens,
        )

    def _pad(
        self, batch: list[list[int]], pad_to: int | None, prefix_id: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pad like the tokenizer, then insert the prefix after the first column (PyLate order).

        Returns ``input_ids`` and ``attention_mask``, both ``(batch, seq)`` int64.
        """
        width = pad_to if pad_to is not None else max(len(ids) for ids in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            span = slice(width - len(seq), width) if self._padding_left else slice(0, len(seq))
            ids[row, span] = seq
            mask[row, span] = 1
        if prefix_id is not None:
            ids = np.insert(ids, 1, prefix_id, axis=1)
            mask = np.insert(mask, 1, 1, axis=1)
        return ids, mask

    def _forward(
        self,
        batch: list[list[int]],
        *,
        is_query: bool,
        prefix_id: int | None,
        pad_to: int | None,
    ) -> list[MultiVector]:
        """Run one batch; returns one ``(n_kept_tokens, dim)`` float32 array per sequence."""
        ids_np, mask_np = self._pad(batch, pad_to, prefix_id)
        input_ids = torch.from_numpy(ids_np).to(self.device)
        attention = torch.from_numpy(mask_np).to(self.device)
        if is_query and self.settings.attend_to_expansion_tokens:
            attention.fill_(1)
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        if self._token_types:
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        hidden = self.backbone(**inputs, return_dict=True)[0]
        if not is_query:
            keep = attention.bool() & ~torch.isin(input_ids, self._skiplist)
        elif self.settings.do_query_expansion:
            keep = torch.ones_like(input_ids, dtype=torch.bool)
        else:
            keep = attention.bool()
        vectors = self.projection(hidden[keep]).float()
        vectors = F.normalize(vectors, p=2.0, dim=-1, eps=_NORMALIZE_EPS)
        counts = keep.sum(dim=1).tolist()
        flat = vectors.cpu().numpy()
        return list(np.split(flat, np.cumsum(counts)[:-1]))
