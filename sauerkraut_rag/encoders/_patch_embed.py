"""Qwen3-VL's patch embedding as the matrix product it is.

``Qwen3VLVisionPatchEmbed`` runs a ``Conv3d`` whose kernel equals its stride over inputs
that are exactly one kernel each: every patch row of ``pixel_values`` (``channels *
temporal * patch * patch`` values, in the weight's own order) is multiplied by the
flattened kernel.  That is ``linear(pixel_values, weight.reshape(out, -1), bias)``, the
same sums in another order (float32 results differ by rounding only, ~1e-6 relative).

On CPU the convolution path is slow for this shape: for a 512x512 page (1,024 patches,
1,536 values each, 1,024 channels) oneDNN's ``Conv3d`` took 140 ms in float32 and 270 ms
in bfloat16 on one thread, the matrix product 21 ms and 4 ms; in bfloat16 the
convolution was about a fifth of a whole ColQwen3 page forward.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch

logger = logging.getLogger(__name__)


def _linear_forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    """``(n_patches, C*T*P*P)`` -> ``(n_patches, embed_dim)``; the module's ``forward``."""
    weight = self.proj.weight
    flat = hidden_states.reshape(-1, weight[0].numel()).to(dtype=weight.dtype)
    return torch.nn.functional.linear(flat, weight.reshape(weight.shape[0], -1), self.proj.bias)


def is_patch_conv(conv: Any) -> bool:
    """Whether ``conv`` is a ``Conv3d`` that cuts its input into disjoint whole kernels."""
    return (
        isinstance(conv, torch.nn.Conv3d)
        and tuple(conv.stride) == tuple(conv.kernel_size)
        and tuple(conv.padding) == (0, 0, 0)
        and tuple(conv.dilation) == (1, 1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def use_linear_patch_embedding(visual: torch.nn.Module) -> bool:
    """Make ``visual.patch_embed`` compute its convolution as one matrix product.

    Only the module's ``forward`` changes; its parameters (and state-dict keys) stay.
    Returns ``False`` and leaves the module alone when it is not the expected layout.
    """
    embed = getattr(visual, "patch_embed", None)
    if embed is None or not is_patch_conv(getattr(embed, "proj", None)):
        logger.debug("Patch embedding left as is: not a kernel-sized Conv3d")
        return False
    embed.forward = types.MethodType(_linear_forward, embed)
    return True
