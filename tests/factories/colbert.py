"""Tiny random PyLate ColBERT checkpoints in the exact on-disk layout of the 15m model.

Layout (as published for ``VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m``):

    modules.json                       0: Transformer at the root, 1: Dense in 1_Dense
    config.json                        BertConfig (transformers 4.x style, BertModel)
    model.safetensors                  BertModel keys: embeddings.*, encoder.layer.N.*, pooler.*
    sentence_bert_config.json          {"max_seq_length", "do_lower_case"}
    config_sentence_transformers.json  PyLate settings (no do_query_expansion: default True)
    vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
    added_tokens.json                  WordPiece with [PAD] [UNK] [CLS] [SEP] [MASK] and the
                                       added tokens "[Q] " and "[D] "; pad_token = [MASK]
    1_Dense/config.json                one-line JSON: in/out features, bias, activation
    1_Dense/model.safetensors          linear.weight (out, in)

Everything is built locally with ``tokenizers``/``safetensors``; nothing is downloaded.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from examples.offline_model import pylate_settings

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
QUERY_PREFIX = "[Q] "
DOCUMENT_PREFIX = "[D] "

_WORDS_TEXT = """
der die das und ist nicht ein eine mit für auf haus straße über grün mädchen schön
hauptstadt deutschland berlin wetter heute morgen frage antwort dokument suche
the a is of and to in that it for with on house street green girl beautiful what
how where capital city germany france paris weather today question answer search
le la les et est une des avec pour el los las y es con para il lo gli di è
de het een en met voor o os as com é
"""
_LETTERS = "abcdefghijklmnopqrstuvwxyzäöüßéèêàçñíóúãõABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜ0123456789"
_PIECES = ("##en", "##er", "##es", "##s", "##e", "##n", "##ung", "##ing", "##ed", "##t")

VARIANTS = (
    "default",
    "no_expansion",
    "attend_expansion",
    "legacy_layernorm",
    "prefixed_keys",
    "no_pooler",
    "extra_key",
    "missing_key",
    "wrong_shape",
    "missing_weights",
    "missing_dense",
    "remote_code",
    "tanh_bias_dense",
)


def tiny_vocab() -> list[str]:
    """WordPiece vocabulary: specials, punctuation, letters, ``##`` pieces and some words."""
    tokens = [
        *SPECIAL_TOKENS,
        *string.punctuation,
        "€",
        "–",
        *_LETTERS,
        *("##" + c for c in _LETTERS),
        *_PIECES,
        *_WORDS_TEXT.split(),
    ]
    return list(dict.fromkeys(tokens))


def _write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def _build_tokenizer(folder: Path, vocab: list[str], *, model_max_length: int) -> int:
    """Write the five tokenizer files; return the vocabulary size including added tokens."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS])
    tok.add_tokens(
        [AddedToken(p, normalized=True, special=False) for p in (QUERY_PREFIX, DOCUMENT_PREFIX)]
    )
    tok.save(str(folder / "tokenizer.json"))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    q_id, d_id = len(vocab), len(vocab) + 1
    _write_json(folder / "added_tokens.json", {DOCUMENT_PREFIX: d_id, QUERY_PREFIX: q_id})

    def entry(content: str, special: bool) -> dict[str, Any]:
        return {
            "content": content,
            "lstrip": False,
            "normalized": not special,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }

    decoder = {str(ids[t]): entry(t, True) for t in SPECIAL_TOKENS}
    decoder[str(q_id)] = entry(QUERY_PREFIX, False)
    decoder[str(d_id)] = entry(DOCUMENT_PREFIX, False)
    _write_json(
        folder / "tokenizer_config.json",
        {
            "added_tokens_decoder": decoder,
            "clean_up_tokenization_spaces": True,
            "cls_token": "[CLS]",
            "do_basic_tokenize": True,
            "do_lower_case": False,
            "extra_special_tokens": {},
            "mask_token": "[MASK]",
            "model_max_length": model_max_length,
            "never_split": None,
            "pad_token": "[MASK]",
            "sep_token": "[SEP]",
            "strip_accents": None,
            "tokenize_chinese_chars": True,
            "tokenizer_class": "BertTokenizer",
            "unk_token": "[UNK]",
        },
    )
    special = {
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "pad_token": "[MASK]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    }
    _write_json(
        folder / "special_tokens_map.json",
        {
            k: {kk: vv for kk, vv in entry(v, True).items() if kk != "special"}
            for k, v in special.items()
        },
    )
    return len(vocab) + 2


def _bert_config(
    *, vocab_size: int, hidden: int, layers: int, heads: int, intermediate: int, positions: int
) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.48.3",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def _random_bert_weights(config: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights for every BertModel parameter (names and shapes from transformers).

    Standard deviations are large enough that attention patterns, positions and
    masking visibly change the outputs.
    """
    from transformers import BertConfig, BertModel

    cfg = BertConfig(**{k: v for k, v in config.items() if k not in ("architectures",)})
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in BertModel(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for key, shape in sorted(shapes.items()):
        noise = torch.randn(shape, generator=gen)
        if "LayerNorm.weight" in key:
            weights[key] = 1.0 + 0.1 * noise
        elif key.endswith("bias"):
            weights[key] = 0.05 * noise
        elif "embeddings" in key:
            weights[key] = 0.5 * noise
        else:
            weights[key] = noise / float(shape[-1]) ** 0.5
    return weights


def _settings(query_length: int, document_length: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "__version__": {
            "sentence_transformers": "4.0.2",
            "transformers": "4.48.3",
            "pytorch": "2.6.0+cu124",
        },
        **pylate_settings(query_length, document_length),
    }
    del settings["do_query_expansion"]  # the published 15m file has no such key
    return settings


def _rename(weights: dict[str, torch.Tensor], fn: Callable[[str], str]) -> dict[str, torch.Tensor]:
    return {fn(k): v for k, v in weights.items()}


def build_tiny_colbert(
    folder: str | Path,
    *,
    variant: str = "default",
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    out_features: int = 16,
    query_length: int = 16,
    document_length: int = 48,
    max_position_embeddings: int = 64,
) -> Path:
    """Write a tiny random checkpoint into ``folder`` (created) and return the folder.

    ``variant`` (see :data:`VARIANTS`) changes one thing for the settings and
    bad-input tests, e.g. ``"legacy_layernorm"`` saves ``LayerNorm.gamma/beta``,
    ``"prefixed_keys"`` stores ``bert.``-prefixed keys, ``"remote_code"`` declares a
    custom model type with an ``auto_map``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; expected one of {VARIANTS}.")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    vocab_size = _build_tokenizer(root, tiny_vocab(), model_max_length=document_length)
    config = _bert_config(
        vocab_size=vocab_size,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        positions=max_position_embeddings,
    )
    weights = _random_bert_weights(config, seed)
    if variant == "remote_code":
        config["model_type"] = "compressed_modernbert"
        config["architectures"] = ["CompressedModernBertModel"]
        config["auto_map"] = {
            "AutoConfig": "configuration_compressed.CompressedModernBertConfig",
            "AutoModel": "modeling_compressed.CompressedModernBertModel",
        }
    _write_json(root / "config.json", config)

    if variant == "legacy_layernorm":
        weights = _rename(
            weights,
            lambda k: k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta"
            ),
        )
    elif variant == "prefixed_keys":
        weights = _rename(weights, lambda k: "bert." + k)
    elif variant == "no_pooler":
        weights = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    elif variant == "extra_key":
        weights["encoder.layer.0.attention.self.gate.weight"] = torch.ones(4, hidden)
    elif variant == "missing_key":
        del weights["encoder.layer.1.intermediate.dense.weight"]
    elif variant == "wrong_shape":
        weights["encoder.layer.0.output.dense.bias"] = torch.zeros(hidden + 1)
    if variant != "missing_weights":
        save_file(weights, str(root / "model.safetensors"), metadata={"format": "pt"})

    _write_json(
        root / "sentence_bert_config.json",
        {"max_seq_length": document_length, "do_lower_case": False},
    )
    _write_json(
        root / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ],
    )
    settings = _settings(query_length, document_length)
    if variant == "no_expansion":
        settings["do_query_expansion"] = False
    elif variant == "attend_expansion":
        settings["attend_to_expansion_tokens"] = True
    _write_json(root / "config_sentence_transformers.json", settings)

    dense = root / "1_Dense"
    dense.mkdir(exist_ok=True)
    with_bias = variant == "tanh_bias_dense"
    _write_json(
        dense / "config.json",
        {
            "in_features": hidden,
            "out_features": out_features,
            "bias": with_bias,
            "activation_function": "torch.nn.modules.activation.Tanh"
            if with_bias
            else "torch.nn.modules.linear.Identity",
        },
        indent=None,
    )
    gen = torch.Generator().manual_seed(seed + 1)
    dense_weights = {
        "linear.weight": torch.randn(out_features, hidden, generator=gen) / hidden**0.5
    }
    if with_bias:
        dense_weights["linear.bias"] = 0.1 * torch.randn(out_features, generator=gen)
    if variant != "missing_dense":
        save_file(dense_weights, str(dense / "model.safetensors"), metadata={"format": "pt"})
    return root
