"""``--dtype`` on ``index``, ``search`` and ``explain`` (issue 16, item 4).

The model runs in the dtype asked for (the stored page vectors are those of a bfloat16
encoder, not of a float32 one); an index built in bfloat16 answers float32 queries and
the other way round (the encoder fingerprint does not include the dtype); a bad name is
one line on stderr, found before torch is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from tests.cli.support import assert_fail_without_torch, run_cli
from tests.factories.collfm2 import build_tiny_collfm2
from tests.pdf_factory import make_pdf
from tests.test_cli import DPI, assert_one_line_error, stored


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("cli-dtype")
    model = build_tiny_collfm2(root / "ck")
    docs = root / "docs"
    docs.mkdir()
    make_pdf(docs / "report.pdf", 2, texts=["Umsatz 2023", "Bilanz"])
    run = run_cli(
        "index", docs, "--index", root / "idx", "--model", model, "--dpi", DPI,
        "--dtype", "bf16", "--verbose",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return root / "idx", model, run.stderr


def test_index_encodes_in_the_given_dtype(built: tuple[Path, Path, str]) -> None:
    index_dir, model, log = built
    assert "in bfloat16" in log
    docs = stored(index_dir)
    images = [Image.open(d.metadata["image_path"]).convert("RGB") for d in docs]
    half = load_encoder(model, device="cpu", dtype="bfloat16").encode_documents(images)
    exact = load_encoder(model, device="cpu", dtype="float32").encode_documents(images)
    for doc, want, other in zip(docs, half, exact, strict=True):
        got = np.asarray(doc.multivector, dtype=np.float32)
        assert got.shape == want.shape
        to_half, to_exact = np.abs(got - want).max(), np.abs(got - other).max()
        assert to_half < 2e-3  # float16 storage of the bfloat16 encoder's vectors
        assert to_half < to_exact


def test_float32_and_bfloat16_queries_on_one_index(
    built: tuple[Path, Path, str], tmp_path: Path
) -> None:
    index_dir, _, _ = built
    results = {}
    for dtype in ("float32", "bfloat16"):
        run = run_cli("search", index_dir, "Umsatz 2023", "--json", "--dtype", dtype)
        assert run.returncode == 0, run.stderr  # no encoder mismatch either way
        results[dtype] = json.loads(run.stdout)["results"]
    assert [r["id"] for r in results["float32"]] == [r["id"] for r in results["bfloat16"]]
    for a, b in zip(results["float32"], results["bfloat16"], strict=True):
        assert a["score"] == pytest.approx(b["score"], rel=1e-2)
    out = tmp_path / "map.png"
    page = results["bfloat16"][0]["id"]
    run = run_cli("explain", index_dir, "Bilanz", "--page", page, "--out", out, "--dtype", "bf16")
    assert run.returncode == 0, run.stderr
    assert out.is_file()


def test_bad_dtype_is_one_line_before_torch(built: tuple[Path, Path, str]) -> None:
    index_dir = built[0]
    run = run_cli("search", index_dir, "x", "--dtype", "int8")
    assert_one_line_error(run, "--dtype", "'int8'", "bfloat16", "float32")
    stderr = assert_fail_without_torch(
        [
            ["search", str(index_dir), "x", "--dtype", "fp64"],
            ["index", str(index_dir.parent / "docs"), "--index", str(index_dir), "--dtype", "x"],
            ["explain", str(index_dir), "x", "--page", "p", "--out", "m.png", "--dtype", "bf8"],
        ]
    )
    assert stderr.count("sauerkraut-rag: error: Expected --dtype") == 3, stderr
