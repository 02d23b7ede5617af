"""Security: no code paths that unpickle or run remote code, ids that stay data, index
folders that cannot reach outside themselves, and crafted files that are never executed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sauerkraut_rag import load_encoder
from sauerkraut_rag.documents.pages import save_page_image
from sauerkraut_rag.errors import CheckpointError, IndexCorruptedError, RemoteCodeRequiredError
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from sauerkraut_rag.types import Page
from tests.reliability.security_scan import scan_source, scan_tree
from tests.reliability.support import files_outside
from tests.retrievers.helpers import assert_matches_brute_force, random_docs

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = str(ROOT / "sauerkraut_rag")
SHIPPED = ("sauerkraut_rag", "benchmarks", "examples", "notebooks")
"""Code users install or run. Tests are not scanned: they craft malicious pickles."""
DIM = 8
HOSTILE_IDS = [
    "../../x",
    "../../../../tmp/escaped",
    "/etc/passwd",
    "C:\\Windows\\evil.dll",
    "~/owned",
    "..",
    ".",
    "a\x00b",
    "a\x00c",
    "\n",
    " ",
    "ü𝄞",
    "%s%n",
    "'; DROP TABLE docs; --",
    "x" * 100_000,
]
INDEX_FILES = re.compile(
    r"index\.sqlite(-wal|-shm)?|writer\.lock|readers\.lock|vectors|hnsw|"
    r"vectors/seg-e\d+-\d{12}-\d{12}\.npy|hnsw/hnsw-[0-9a-f]{32}\.voy"
)
"""Every name an index folder may contain: none is derived from an id."""


class Payload:
    """Unpickling this creates the file ``path``: proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


# ------------------------------------------------------------------ static scan


def test_shipped_code_has_no_unsafe_patterns() -> None:
    assert scan_tree(ROOT, SHIPPED) == {}


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle\n",
        "from joblib import load\n",
        "import numpy as np\nx = np.load('a.npy', allow_pickle=True)\n",
        "import torch\nstate = torch.load('w.pt')\n",
        "import torch\nstate = torch.load('w.pt', weights_only=False)\n",
        "from torch import load\n",
        "value = eval(text)\n",
        "exec(code)\n",
        "msg = f'{eval(text)}'\n",
        "import subprocess\nsubprocess.run(cmd, shell=True)\n",
        "import os\nos.system(cmd)\n",
        "def load(path, trust_remote_code=True):\n    pass\n",
        "def load(path, *, trust_remote_code: bool = True):\n    pass\n",
        "model = AutoModel.from_pretrained(path, trust_remote_code=True)\n",
        "class Options:\n    trust_remote_code: bool = True\n",
        "data = cPickle.loads(blob)\n",
    ],
)
def test_scan_flags_each_unsafe_pattern(snippet: str) -> None:
    assert scan_source(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        '"""Nothing here is pickled; eval( and exec( are words in prose."""\n',
        "# pickle is never used, shell=True neither\nx = 1\n",
        "model.eval()\n",
        "import torch\nstate = torch.load('w.pt', map_location='cpu', weights_only=True)\n",
        "def load(path, trust_remote_code=False):\n    pass\n",
        "msg = 'files that need pickled objects are refused'\n",
        "load(path, trust_remote_code=trust_remote_code)\n",
    ],
)
def test_scan_accepts_safe_code(snippet: str) -> None:
    assert scan_source(snippet) == []


# ------------------------------------------------------------------ ids and paths


def test_hostile_ids_are_data_never_file_names(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    docs = dict(zip(HOSTILE_IDS, random_docs(len(HOSTILE_IDS), DIM, seed=4), strict=True))
    metas = [{"path": doc_id, "source": "../../" + doc_id[:50]} for doc_id in docs]
    with VoyagerIndex.create(folder, dim=DIM, exact_threshold=0, candidates=100) as index:
        index.add(list(docs), list(docs.values()), metas, list(docs))
        index.compact()
    with VoyagerIndex.open(folder) as index:
        stored = index.get(HOSTILE_IDS)
        assert [d.id for d in stored] == HOSTILE_IDS
        assert [d.payload for d in stored] == HOSTILE_IDS
        query = random_docs(1, DIM, seed=9)[0]
        assert_matches_brute_force(index.search([query], 5)[0], query, docs, 5)
        assert index.delete(HOSTILE_IDS[:7]) == 7
    assert files_outside(tmp_path, folder) == set()
    names = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    assert all(INDEX_FILES.fullmatch(name) for name in names), sorted(names)


def test_page_image_names_never_come_from_sources(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    page = Page(
        source="../../evil.png",
        page_number=1,
        image=Image.new("RGB", (4, 4), (1, 2, 3)),
        metadata={"source_sha256": "../../../../tmp/escaped"},
    )
    path = save_page_image(page, folder)
    assert path.parent == folder and re.fullmatch(r"[0-9a-f]{32}\.png", path.name)
    assert files_outside(tmp_path, folder) == set()


def _index_with_one_doc(folder: Path) -> None:
    with VoyagerIndex.create(folder, dim=DIM) as index:
        index.add(["a", "b"], random_docs(2, DIM, seed=1))


def _set_meta(folder: Path, key: str, value: Any) -> None:
    conn = sqlite3.connect(folder / "index.sqlite")
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    conn.close()


def _meta(folder: Path, key: str) -> Any:
    conn = sqlite3.connect(folder / "index.sqlite")
    try:
        return json.loads(
            conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
        )
    finally:
        conn.close()


def test_crafted_graph_entry_cannot_delete_outside_files(tmp_path: Path) -> None:
    """Regression: a saved-graph entry naming ``../../victim`` made close() delete it."""
    folder = tmp_path / "index"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    _index_with_one_doc(folder)
    _set_meta(folder, "hnsw", {**_meta(folder, "hnsw"), "file": "../../victim.txt"})
    with VoyagerIndex.open(folder) as index:
        index.add(["c"], random_docs(1, DIM, seed=2))
        index.compact()
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("read_only", [False, True])
def test_symlinked_folder_inside_an_index_is_refused_untouched(
    tmp_path: Path, read_only: bool
) -> None:
    """Regression: a ``vectors`` symlink made the orphan sweep delete files it points to;
    now the index refuses it (it never reads or writes outside its folder)."""
    folder, home = tmp_path / "index", tmp_path / "home"
    _index_with_one_doc(folder)
    home.mkdir()
    (home / "thesis.txt").write_text("years of work")
    for segment in (folder / "vectors").iterdir():
        segment.rename(home / segment.name)
    (folder / "vectors").rmdir()
    (folder / "vectors").symlink_to(home)
    before = sorted(p.name for p in home.iterdir())
    with pytest.raises(IndexCorruptedError, match="symbolic link"):
        VoyagerIndex.open(folder, read_only=read_only)
    assert (home / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in home.iterdir()) == before


def test_crafted_segment_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    _index_with_one_doc(folder)
    outside = tmp_path / "outside.npy"
    segment = next((folder / "vectors").iterdir())
    outside.write_bytes(segment.read_bytes())
    conn = sqlite3.connect(folder / "index.sqlite")
    with conn:
        conn.execute("UPDATE segments SET file = ?", ("../../outside.npy",))
    conn.close()
    with pytest.raises(IndexCorruptedError, match="inconsistent"):
        VoyagerIndex.open(folder)
    assert outside.read_bytes() == segment.read_bytes()


# ------------------------------------------------------------------ crafted files


def _object_array(path: Path, marker: Path) -> int:
    np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    return path.stat().st_size


@pytest.mark.parametrize("verify", [True, False])
def test_object_dtype_segment_is_refused_unexecuted(tmp_path: Path, verify: bool) -> None:
    folder, marker = tmp_path / "index", tmp_path / "pwned"
    _index_with_one_doc(folder)
    segment = next((folder / "vectors").iterdir())
    nbytes = _object_array(segment, marker)
    sha = hashlib.sha256(segment.read_bytes()).hexdigest()
    conn = sqlite3.connect(folder / "index.sqlite")
    with conn:  # make size and checksum agree, so only the loader stands in the way
        conn.execute("UPDATE segments SET sha256 = ?, nbytes = ?", (sha, nbytes))
    conn.close()
    with pytest.raises(IndexCorruptedError, match=r"cannot be read: .*Python objects"):
        VoyagerIndex.open(folder, verify=verify)
    assert not marker.exists()


def test_pickles_placed_in_an_index_are_never_loaded(tmp_path: Path) -> None:
    folder, marker = tmp_path / "index", tmp_path / "pwned"
    _index_with_one_doc(folder)
    graph = folder / "hnsw" / _meta(folder, "hnsw")["file"]
    blob = pickle.dumps(Payload(marker))
    graph.write_bytes(blob)  # the HNSW graph replaced by a pickle
    (folder / "state.pkl").write_bytes(blob)
    (folder / "hnsw" / "extra.pkl").write_bytes(blob)
    _object_array(folder / "vectors" / "orphan.npy", marker)
    with VoyagerIndex.open(folder) as index:
        assert sorted(d.id for d in index.get(["a", "b"])) == ["a", "b"]
        assert len(index.search(random_docs(1, DIM, seed=3), 2)[0]) == 2
    assert not marker.exists()
    assert not (folder / "vectors" / "orphan.npy").exists()  # swept, never read


# ------------------------------------------------------------------ remote code


def test_remote_code_checkpoint_is_refused_without_running_it(
    broken_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    folder = shutil.copytree(broken_checkpoints["colbert/remote_code"], tmp_path / "model")
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()\n"
    for name in ("modeling_compressed.py", "configuration_compressed.py"):
        (folder / name).write_text(code)
    with pytest.raises(RemoteCodeRequiredError, match="trust_remote_code=True"):
        load_encoder(folder, device="cpu")
    assert not marker.exists()


def test_loading_never_enables_remote_code(
    colbert_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import transformers

    folder = shutil.copytree(colbert_dir, tmp_path / "model")  # not in load_encoder's cache

    seen: list[Any] = []
    for cls in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__  # type: ignore[attr-defined]

        def spy(klass: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename.startswith(PACKAGE):  # our own calls
                seen.append(kwargs.get("trust_remote_code"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_encoder(folder, device="cpu")
    assert seen and all(value is False for value in seen), seen


def test_pickled_projection_head_is_refused_unexecuted(tmp_path: Path) -> None:
    import torch

    from tests.factories.collfm2 import build_tiny_collfm2

    folder = build_tiny_collfm2(tmp_path / "model", layout="projection_pt")
    marker = tmp_path / "pwned"
    torch.save({"custom_text_proj": Payload(marker)}, folder / "collfm2_projection.pt")
    with pytest.raises(CheckpointError, match=r"collfm2_projection\.pt"):
        load_encoder(folder, device="cpu")
    assert not marker.exists()
