"""One loaded model per process: ``load_encoder`` shares encoders (issue 15, row 4)."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from pathlib import Path

import pytest

from sauerkraut_rag import load_encoder
from sauerkraut_rag.encoders import _cache
from tests.factories.colbert import build_tiny_colbert


@pytest.fixture(scope="module")
def colbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("cache") / "colbert")


def test_same_folder_device_dtype_gives_the_same_object(
    colbert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_encoder(colbert_dir, device="cpu", dtype="float32")
    monkeypatch.chdir(colbert_dir.parent)
    assert load_encoder("colbert", device="cpu", dtype="fp32") is first  # relative spelling
    assert load_encoder(str(colbert_dir), device="cpu", dtype="float32") is first


def test_other_dtype_or_options_give_another_object(colbert_dir: Path) -> None:
    base = load_encoder(colbert_dir, device="cpu", dtype="float32")
    assert load_encoder(colbert_dir, device="cpu", dtype="bfloat16") is not base
    assert load_encoder(colbert_dir, device="cpu", dtype="float32", query_length=8) is not base


def test_cache_is_weak(colbert_dir: Path) -> None:
    encoder = load_encoder(colbert_dir, device="cpu", dtype="float16")
    ref = weakref.ref(encoder)
    assert ref() in _cache._entries.values()
    del encoder
    gc.collect()
    assert ref() is None  # the cache did not keep the model alive
    assert load_encoder(colbert_dir, device="cpu", dtype="float16").dim > 0


def test_rewritten_checkpoint_is_loaded_again(tmp_path: Path) -> None:
    folder = build_tiny_colbert(tmp_path / "colbert")
    first = load_encoder(folder, device="cpu", dtype="float32")
    config = folder / "config.json"
    stamp = config.stat().st_mtime_ns + 10_000_000
    os.utime(config, ns=(stamp, stamp))
    assert load_encoder(folder, device="cpu", dtype="float32") is not first


def test_concurrent_loads_load_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = build_tiny_colbert(tmp_path / "colbert")
    from sauerkraut_rag.encoders import loading

    calls: list[int] = []
    real = loading._load

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "_load", counting)
    results: list[object] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(load_encoder(folder, device="cpu", dtype="float32"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(r is results[0] for r in results)


def test_store_retriever_and_reranker_share_one_model(colbert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from sauerkraut_rag.integrations.langchain import MaxSimReranker, SauerkrautVectorStore
    from sauerkraut_rag.integrations.llamaindex import MaxSimRerank, SauerkrautRetriever

    with SauerkrautVectorStore(colbert_dir, tmp_path / "lc") as store:
        reranker = MaxSimReranker(str(colbert_dir))
        rerank = MaxSimRerank(text_encoder=colbert_dir)
        with SauerkrautRetriever(colbert_dir, tmp_path / "li") as retriever:
            assert reranker.encoder is store.encoder
            assert retriever.encoder is store.encoder
            assert rerank._text_encoder is store.encoder
