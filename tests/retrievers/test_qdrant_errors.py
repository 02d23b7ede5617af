"""QdrantIndex's bad-input list: each gets a typed error naming the fix, and the collection
stays as it was (an unreachable URL, a wrong API key, a callable filter, a document over
a per-point limit, a failed batch part-way through a large add)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from sauerkraut_rag.errors import (
    DocumentTooLargeError,
    IndexAuthenticationError,
    IndexConnectionError,
    IndexStoreError,
    PartialWriteError,
    UnsupportedFilterError,
)
from sauerkraut_rag.retrievers.qdrant import QdrantIndex
from sauerkraut_rag.retrievers.qdrant.callables import equivalent_filter
from tests.retrievers.helpers import random_docs, unit_rows

DIM = 16


class _Refuse(http.server.BaseHTTPRequestHandler):
    """A stand-in for a secured Qdrant: every request is refused with 401."""

    def _refuse(self) -> None:
        body = json.dumps({"status": {"error": "Must provide an API key"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.enable_socket
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_wrong_api_key_is_an_authentication_error(refusing_server):
    with pytest.raises(IndexAuthenticationError, match="QDRANT_API_KEY"):
        QdrantIndex(
            "docs",
            dim=DIM,
            url=refusing_server,
            api_key="wrong",
            timeout=5,
            check_compatibility=False,
        )


@pytest.mark.enable_socket
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unreachable_url_is_a_connection_error():
    with pytest.raises(IndexConnectionError, match=r"Cannot reach Qdrant.*docker run") as raised:
        QdrantIndex("docs", dim=DIM, url="http://127.0.0.1:1", timeout=5, check_compatibility=False)
    assert isinstance(raised.value, ConnectionError)  # also caught as the built-in


def test_api_key_needs_a_server(tmp_path):
    with pytest.raises(IndexStoreError, match="api_key only applies"):
        QdrantIndex("docs", dim=DIM, path=tmp_path, api_key="x")


# ---------------------------------------------------------------------------- per-point limits


def test_documents_over_qdrant_limits_write_nothing():
    with QdrantIndex("docs", dim=128, location=":memory:", max_request_bytes=1 << 20) as index:
        good = unit_rows(np.random.default_rng(0), 4, 128)
        huge = unit_rows(np.random.default_rng(1), 8193, 128)  # 8,193 x 128 > 1,048,576 floats
        with pytest.raises(DocumentTooLargeError, match=r"8193 token vectors.*pool_factor"):
            index.add(["ok", "huge"], [good, huge])
        with pytest.raises(DocumentTooLargeError, match="max_request_bytes"):
            index.add(["ok", "text"], [good, good], None, [None, "x" * (1 << 20)])
        assert len(index) == 0


def test_strict_mode_token_limit_is_checked_before_sending():
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    with QdrantIndex("docs", dim=DIM, client=client) as index:
        index._max_vectors = 5  # what a strict-mode collection reports
        with pytest.raises(DocumentTooLargeError, match="strict mode allows 5"):
            index.add(["a"], random_docs(1, DIM, lo=6, hi=6))
        assert len(index) == 0


# ---------------------------------------------------------------------------- batches


def test_large_add_goes_in_batches_with_progress(capsys):
    with QdrantIndex("docs", dim=DIM, location=":memory:", batch_size=4) as index:
        calls: list[int] = []
        upsert = index._engine.upsert
        index._engine.upsert = lambda points: (calls.append(len(points)), upsert(points))[1]
        index.add([str(i) for i in range(10)], random_docs(10, DIM), show_progress=True)
        assert calls == [4, 4, 2] and len(index) == 10
        assert "Writing to Qdrant" in capsys.readouterr().err


def test_failed_batch_reports_which_ids_were_written():
    with QdrantIndex("docs", dim=DIM, location=":memory:", batch_size=3) as index:
        upsert = index._engine.upsert
        calls = {"n": 0}

        def flaky(points: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise IndexStoreError("Qdrant at test failed: timeout")
            upsert(points)

        index._engine.upsert = flaky
        ids = [f"d{i}" for i in range(10)]
        with pytest.raises(PartialWriteError, match=r"batch 3 of 4.*6 documents") as raised:
            index.add(ids, random_docs(10, DIM))
        assert raised.value.written_ids == ids[:6]
        assert raised.value.unwritten_ids == ids[6:]
        assert sorted(d.id for d in index.get(ids)) == ids[:6]
        index._engine.upsert = upsert
        index.upsert(raised.value.unwritten_ids, random_docs(4, DIM))  # the retry it suggests
        assert len(index) == 10


def test_failure_in_the_first_batch_is_the_original_error():
    with QdrantIndex("docs", dim=DIM, location=":memory:", batch_size=3) as index:

        def down(points: Any) -> None:
            raise IndexConnectionError("Cannot reach Qdrant at test")

        index._engine.upsert = down
        with pytest.raises(IndexConnectionError):
            index.add(["a", "b"], random_docs(2, DIM))


# ---------------------------------------------------------------------------- callable filters


def _year_and_lang(meta: dict[str, Any]) -> bool:
    """A documented filter function."""
    return meta["year"] >= 2020 and meta.get("lang") == "de"


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (lambda m: m["lang"] == "de", {"lang": "de"}),
        (lambda m: m["year"] >= 2020, {"year": {"$gte": 2020}}),
        (lambda m: m["tag"] in ("a", "b"), {"tag": {"$in": ["a", "b"]}}),
        (lambda m: "draft" not in m, {"draft": {"$exists": False}}),
        (
            lambda m: not m["x"] != 1 or m["y"] < 2,  # noqa: SIM202
            {"$or": [{"$not": {"x": {"$ne": 1}}}, {"y": {"$lt": 2}}]},
        ),
        (_year_and_lang, {"$and": [{"year": {"$gte": 2020}}, {"lang": "de"}]}),
        (lambda m: m["lang"].startswith("d"), None),
        (len, None),
    ],
)
def test_equivalent_filter_of_simple_predicates(func, expected):
    assert equivalent_filter(func) == expected


def test_callable_filter_is_refused_with_the_equivalent_filter():
    with QdrantIndex("docs", dim=DIM, location=":memory:") as index:
        index.add(["a"], random_docs(1, DIM), [{"year": 2021}])
        query = [unit_rows(np.random.default_rng(0), 2, DIM)]
        with pytest.raises(UnsupportedFilterError, match=r'\{"year": \{"\$gte": 2020\}\}'):
            index.search(query, 3, filter=lambda m: m["year"] >= 2020)
        with pytest.raises(UnsupportedFilterError, match=r"filter language, e\.g\."):
            index.search(query, 3, filter=lambda m: bool(m))
        with pytest.raises(UnsupportedFilterError):
            index.count(lambda m: True)


def test_missing_qdrant_client_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # as if not installed
    from sauerkraut_rag.errors import DependencyMissingError

    with pytest.raises(DependencyMissingError, match=r"sauerkraut-rag\[qdrant\]"):
        QdrantIndex("docs", dim=DIM, location=":memory:")
