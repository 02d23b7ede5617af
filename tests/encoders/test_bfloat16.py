"""bfloat16 page encoding on CPU: both page models, float32 output, close to float32.

The tiny random checkpoints of the factories are encoded twice, in float32 (the exact
default) and in bfloat16; the bfloat16 vectors must be float32 arrays of unit length
(the head, the norm and the output run in float32) whose per-token cosine to the float32
vectors is >= 0.99, and an index built in one dtype must accept an encoder in the other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders import _runtime
from sauerkraut_rag.encoders._visual import HEAD_DTYPE
from sauerkraut_rag.errors import InvalidInputError
from tests.encoders.colqwen3_inputs import PAGES as QWEN_PAGES
from tests.encoders.test_collfm2 import PAGES as LFM2_PAGES
from tests.factories.collfm2 import build_tiny_collfm2
from tests.factories.colqwen3 import build_tiny_colqwen3

QUERIES = ["Umsatz 2023?", "What does the revenue chart on page three show?"]
BUILDERS = {
    "collfm2": (lambda folder: build_tiny_collfm2(folder / "ck"), LFM2_PAGES),
    "colqwen3": (build_tiny_colqwen3, QWEN_PAGES),
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    build, pages = BUILDERS[request.param]
    folder = build(tmp_path_factory.mktemp(request.param))
    exact = load_encoder(folder, device="cpu", dtype="float32")
    half = load_encoder(folder, device="cpu", dtype="bfloat16")
    return exact, half, pages


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_backbone_runs_in_bfloat16_head_in_float32(pair: Any) -> None:
    exact, half, _ = pair
    backbone = getattr(half, "backbone", None) or half.model
    assert half.dtype == torch.bfloat16 and exact.dtype == torch.float32
    assert {p.dtype for p in backbone.parameters()} == {torch.bfloat16}
    assert half.projection.weight.dtype == HEAD_DTYPE == torch.float32


def test_pages_and_queries_are_unit_float32_close_to_float32(pair: Any) -> None:
    exact, half, pages = pair
    for want, got in [
        *zip(exact.encode_documents(pages), half.encode_documents(pages), strict=True),
        *zip(exact.encode_queries(QUERIES), half.encode_queries(QUERIES), strict=True),
    ]:
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = cosines(want, got)
        assert cos.min() >= 0.99, cos.min()
        assert cos.mean() >= 0.999, cos.mean()
        assert not np.array_equal(want, got)  # really computed in another precision


def test_fingerprint_does_not_depend_on_dtype(pair: Any) -> None:
    exact, half, _ = pair
    assert exact.fingerprint == half.fingerprint


def test_torch_dtype_object_is_accepted(pair: Any) -> None:
    exact, _, pages = pair
    folder = exact.checkpoint_folder
    again = load_encoder(folder, device="cpu", dtype=torch.bfloat16)
    assert again.dtype == torch.bfloat16
    assert again.encode_documents(pages[:1])[0].dtype == np.float32


@pytest.mark.parametrize("bad", ["bfloat", "int8", "float64"])
def test_unknown_dtype_is_a_typed_error(pair: Any, bad: str) -> None:
    exact, _, _ = pair
    with pytest.raises(InvalidInputError, match="bfloat16"):
        load_encoder(exact.checkpoint_folder, device="cpu", dtype=bad)


def test_bfloat16_without_native_support_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_runtime, "cpu_has_native_bfloat16", lambda: False)
    _runtime._warn_slow_bfloat16.cache_clear()
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING, logger=_runtime.__name__):
        for _ in range(3):
            assert _runtime.resolve_dtype("bf16", cpu) == torch.bfloat16
        assert _runtime.resolve_dtype("float32", cpu) == torch.float32
    warnings = [r for r in caplog.records if "native bfloat16" in r.getMessage()]
    assert len(warnings) == 1
    _runtime._warn_slow_bfloat16.cache_clear()


def test_native_bfloat16_probe_matches_cpu_flags() -> None:
    flags = Path("/proc/cpuinfo")
    if not flags.is_file() or "flags" not in flags.read_text():
        pytest.skip("no x86 /proc/cpuinfo flags here")
    words = set(flags.read_text().split())
    expected = bool({"avx512_bf16", "amx_bf16", "amx_tile"} & words)
    assert _runtime.cpu_has_native_bfloat16() is expected
