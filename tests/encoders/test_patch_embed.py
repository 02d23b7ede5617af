"""Qwen3-VL patch embedding as a matrix product: same values as transformers' Conv3d."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen3VLVisionConfig
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionPatchEmbed

from sauerkraut_rag.encoders._patch_embed import is_patch_conv, use_linear_patch_embedding


class Visual(torch.nn.Module):
    def __init__(self, embed: torch.nn.Module) -> None:
        super().__init__()
        self.patch_embed = embed


def make_embed(dtype: torch.dtype) -> Qwen3VLVisionPatchEmbed:
    config = Qwen3VLVisionConfig(hidden_size=64, patch_size=4, temporal_patch_size=2)
    torch.manual_seed(0)
    embed = Qwen3VLVisionPatchEmbed(config).to(dtype)
    return embed.eval()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 0.05)])
def test_linear_patch_embedding_equals_the_convolution(dtype: torch.dtype, tol: float) -> None:
    embed = make_embed(dtype)
    pixels = torch.randn(37, 3 * 2 * 4 * 4)  # float32 rows, as the image processor gives
    with torch.inference_mode():
        expected = embed(pixels).float()
        assert use_linear_patch_embedding(Visual(embed))
        got = embed(pixels)
    assert got.dtype == dtype and got.shape == (37, 64)
    torch.testing.assert_close(got.float(), expected, atol=tol, rtol=0)
    state = embed.state_dict()
    assert sorted(state) == ["proj.bias", "proj.weight"]  # checkpoint keys unchanged


def test_other_layouts_are_left_alone() -> None:
    overlapping = torch.nn.Conv3d(3, 8, kernel_size=(2, 4, 4), stride=(1, 2, 2))
    assert not is_patch_conv(overlapping)
    assert not is_patch_conv(torch.nn.Linear(4, 4))
    embed = torch.nn.Module()
    embed.proj = overlapping
    assert not use_linear_patch_embedding(Visual(embed))
    assert "forward" not in vars(embed)
    assert not use_linear_patch_embedding(torch.nn.Module())  # no patch_embed at all


def test_colqwen3_encoder_uses_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    from sauerkraut_rag import load_encoder
    from tests.factories.colqwen3 import build_tiny_colqwen3

    encoder = load_encoder(build_tiny_colqwen3(tmp_path_factory.mktemp("q3")), device="cpu")
    embed = encoder.model.visual.patch_embed
    assert is_patch_conv(embed.proj)
    assert getattr(vars(embed).get("forward"), "__func__", None) is not None
