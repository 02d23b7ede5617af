"""The command line with checkpoints saved by transformers 5.x, and the index's encoder record.

Runs ``sauerkraut-rag`` as a subprocess (offline) on the ColQwen3 checkpoint that the
authors' ``save_pretrained`` wrote under transformers 5.x (no ``preprocessor_config.json``)
and checks the stored vectors against the authors' 4.57.1 goldens.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.factories.colqwen3 import build_tiny_colqwen3
from tests.test_cli import Run, assert_one_line_error, cli, stored

TF457 = Path(__file__).resolve().parent / "fixtures" / "tf457"
PAGE_NAMES: list[str] = json.loads((TF457 / "versions.json").read_text(encoding="utf-8"))["pages"]
PAGES = ("small", "receipt")


@pytest.fixture(scope="module")
def qwen_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Run]:
    root = tmp_path_factory.mktemp("cli-qwen5")
    model = shutil.copytree(TF457 / "colqwen3_5x", root / "colqwen3_5x")
    docs = root / "docs"
    docs.mkdir()
    for name in PAGES:
        shutil.copy(TF457 / "pages" / f"{name}.png", docs / f"{name}.png")
    index_dir = root / "idx"
    run = cli("index", docs, "--index", index_dir, "--model", model)
    return index_dir, model, run


def test_index_with_a_checkpoint_saved_by_transformers_5(
    qwen_index: tuple[Path, Path, Run],
) -> None:
    index_dir, _, run = qwen_index
    assert run.returncode == 0, run.stderr
    assert not (TF457 / "colqwen3_5x" / "preprocessor_config.json").exists()
    with np.load(TF457 / "golden.npz", allow_pickle=False) as golden:
        for doc in stored(index_dir):
            name = Path(str(doc.metadata["source"])).stem
            want = golden[f"colqwen3/pages/{PAGE_NAMES.index(name)}"]
            assert doc.multivector.shape == want.shape
            np.testing.assert_allclose(doc.multivector, want, atol=2e-3)  # float16 storage


def test_settings_and_info_show_the_encoder(qwen_index: tuple[Path, Path, Run]) -> None:
    index_dir, _, _ = qwen_index
    settings = json.loads((index_dir / "sauerkraut-rag.json").read_text(encoding="utf-8"))
    assert settings["encoder"]["family"] == "colqwen3"
    assert settings["encoder"]["content_hash"].startswith("sha256:")
    facts = json.loads(cli("info", index_dir, "--json").stdout)
    assert facts["encoder"] == settings["encoder"]
    assert "encoder:      colqwen3_5x (colqwen3; dim 128" in cli("info", index_dir).stdout


def test_search_with_another_model_is_refused(
    qwen_index: tuple[Path, Path, Run], tmp_path: Path
) -> None:
    index_dir, _, _ = qwen_index
    other = build_tiny_colqwen3(tmp_path / "other", seed=7)
    run = cli("search", index_dir, "revenue", "--model", other)
    assert_one_line_error(run, "model:", "rebuild")


def test_index_written_before_encoder_records_still_searches(
    qwen_index: tuple[Path, Path, Run], tmp_path: Path
) -> None:
    index_dir = shutil.copytree(qwen_index[0], tmp_path / "old")
    with sqlite3.connect(index_dir / "index.sqlite") as conn:
        conn.execute("DELETE FROM meta WHERE key = 'encoder'")
    settings = json.loads((index_dir / "sauerkraut-rag.json").read_text(encoding="utf-8"))
    del settings["encoder"]
    (index_dir / "sauerkraut-rag.json").write_text(json.dumps(settings), encoding="utf-8")
    run = cli("search", index_dir, "revenue", "--json")
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)["results"]) == len(PAGES)
    assert "unknown (indexed before encoder fingerprints)" in cli("info", index_dir).stdout
