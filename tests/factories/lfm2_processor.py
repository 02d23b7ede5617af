"""The tiny LFM2-VL tokenizer and processor files of the ColLFM2 factory (``collfm2.py``):
LFM2's special tokens at their real ids, the LFM2-VL image tokens from id 396, and the
processor files as transformers 4.57 wrote them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LFM2_SPECIAL_TOKENS = (
    "<|pad|>",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|fim_pre|>",
    "<|fim_mid|>",
    "<|fim_suf|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|tool_list_start|>",
    "<|tool_list_end|>",
    "<|tool_call_start|>",
    "<|tool_call_end|>",
    "<|tool_response_start|>",
    "<|tool_response_end|>",
)
"""LFM2's special tokens at their real ids 0..13."""

IMAGE_TOKEN_ID = 396
"""``<image>``: the LFM2-VL default ``image_token_id``."""

MAX_GRID = 10
IMAGE_TOKENS = (
    "<image>",
    *(f"<|img_row_{r}_col_{c}|>" for r in range(1, MAX_GRID + 1) for c in range(1, MAX_GRID + 1)),
    "<|img_thumbnail|>",
    "<|image_start|>",
    "<|image_end|>",
)
VOCAB_SIZE = 512

CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{- '<image>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def build_tokenizer() -> Any:
    """The tiny LFM2-style byte-level BPE tokenizer as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(LFM2_SPECIAL_TOKENS)}
    for byte_token in alphabet:
        vocab[byte_token] = len(vocab)
    tok = Tokenizer(BPE(vocab=vocab, merges=[], fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(LFM2_SPECIAL_TOKENS))
    fillers = [f"<|reserved_{i}|>" for i in range(len(vocab), IMAGE_TOKEN_ID)]
    tok.add_special_tokens(fillers)
    tok.add_special_tokens(list(IMAGE_TOKENS))
    tail = VOCAB_SIZE - tok.get_vocab_size()
    tok.add_special_tokens(
        [f"<|reserved_{IMAGE_TOKEN_ID + len(IMAGE_TOKENS) + i}|>" for i in range(tail)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A",
        pair="<|startoftext|> $A $B",
        special_tokens=[("<|startoftext|>", 1)],
    )
    if tok.token_to_id("<image>") != IMAGE_TOKEN_ID or tok.get_vocab_size() != VOCAB_SIZE:
        raise RuntimeError("tiny LFM2 tokenizer layout is off")  # factory self-check
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        model_max_length=1_000_000,
    )


def save_processor(folder: Path) -> None:
    """Write the LFM2-VL processor files (image processor, tokenizer, chat template)."""
    from transformers import Lfm2VlImageProcessor, Lfm2VlProcessor

    image_processor = Lfm2VlImageProcessor(
        min_image_tokens=64,
        max_image_tokens=256,
        min_tiles=2,
        max_tiles=MAX_GRID,
        use_thumbnail=True,
        tile_size=512,
        encoder_patch_size=16,
        downsample_factor=2,
        do_image_splitting=True,
    )
    processor = Lfm2VlProcessor(
        image_processor=image_processor, tokenizer=build_tokenizer(), chat_template=CHAT_TEMPLATE
    )
    processor.save_pretrained(str(folder))
    # The published files were written by transformers 4.57: the image processor has
    # its own preprocessor_config.json, processor_config.json names only the class, and
    # tokenizer_config.json names PreTrainedTokenizerFast with the image tokens as extra
    # special tokens (4.57's Lfm2VlProcessor reads tokenizer.image_token).
    (folder / "preprocessor_config.json").write_text(
        json.dumps(image_processor.to_dict(), indent=2), encoding="utf-8"
    )
    (folder / "processor_config.json").write_text(
        json.dumps({"processor_class": "Lfm2VlProcessor"}, indent=2), encoding="utf-8"
    )
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    tokenizer_config.pop("backend", None)
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tokenizer_config["extra_special_tokens"] = {
        "image_token": "<image>",
        "image_start_token": "<|image_start|>",
        "image_end_token": "<|image_end|>",
        "image_thumbnail": "<|img_thumbnail|>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), "utf-8")
    specials = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|pad|>",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2), "utf-8")
