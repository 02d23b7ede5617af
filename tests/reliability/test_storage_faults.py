"""Storage faults tell the truth: a full disk at each write step of every operation.

For ``add`` (which also merges segments), ``upsert``, ``delete``, ``compact`` and
``close`` (which saves the graph), the operation runs with 0, 1, 2, ... pages of free
space until it succeeds (a small tmpfs when the test may mount one, else
``RLIMIT_FSIZE``). Every failure must be a :class:`StorageFullError` saying nothing was
stored; ``close()`` never raises; and after each attempt the folder, reopened read-only
and writable, holds exactly the state before (operation failed) or after (operation
reported success), and searches.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sauerkraut_rag.errors import IndexStorageError, StorageFullError
from sauerkraut_rag.retrievers.voyager import housekeeping, writes
from sauerkraut_rag.retrievers.voyager import sql as index_sql
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.fault_sweep import (
    Attempt,
    Limiter,
    RlimitLimiter,
    TmpfsLimiter,
    assert_storage_error,
    copy_folder,
    small_tmpfs,
    sweep,
)
from tests.reliability.support import snapshot
from tests.retrievers.helpers import random_docs

DIM = 16
BATCH = 8
OPTIONS = {"exact_threshold": 5, "candidates": 100}


def _batch(step: int, n: int = BATCH) -> tuple[list[str], list[np.ndarray], list[dict], list[str]]:
    ids = [f"s{step}-{i}" for i in range(n)]
    return ids, random_docs(n, DIM, seed=step), [{"s": step, "i": i} for i in range(n)], ids


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three batches (merged into one segment as they go) and a one-document segment, so
    that the next batch merges with it; two tombstones; graph saved."""
    folder = tmp_path_factory.mktemp("faults") / "base"
    with VoyagerIndex.create(folder, dim=DIM, **OPTIONS) as index:
        for step in range(3):
            index.add(*_batch(step))
        index.add(*_batch(3, n=1))
        index.delete(["s0-0", "s1-1"])
        assert len(index._snap.segments) == 2
    return folder


@pytest.fixture
def limiter(tmp_path: Path) -> Iterator[tuple[Limiter, Path]]:
    """A limiter and the folder the index lives in (on the small disk if there is one)."""
    with small_tmpfs(tmp_path / "disk") as mount:
        if mount is not None:
            yield TmpfsLimiter(mount), mount / "index"
        else:
            limiter = RlimitLimiter(tmp_path / "index")
            try:
                yield limiter, tmp_path / "index"
            finally:
                limiter.clear()


OPERATIONS = {
    "add": lambda index: index.add(*_batch(10)),
    "upsert": lambda index: index.upsert(
        ["s1-0", "s2-5", "new-a", "new-b"], random_docs(4, DIM, seed=20), [{"u": 1}] * 4
    ),
    "delete": lambda index: index.delete(["s0-3", "s2-2", "s2-7"]),
    "compact": lambda index: index.compact(),
}


def _outcome(base: Path, scratch: Path, kind: str) -> dict[str, Any]:
    """The stored state after ``kind`` succeeded, from an unlimited run."""
    copy_folder(base, scratch)
    with VoyagerIndex.open(scratch) as index:
        if kind == "close":
            index.add(*_batch(30))
        else:
            OPERATIONS[kind](index)
        return snapshot(index)


def _stored(folder: Path) -> tuple[dict[str, Any], int]:
    """Snapshot and tombstone count, via a read-only and then a writable open."""
    with VoyagerIndex.open(folder, read_only=True) as reader:
        seen = snapshot(reader)
        query = random_docs(1, DIM, seed=3)[0]
        assert len(reader.search([query], 3)[0]) == 3
    with VoyagerIndex.open(folder) as index:
        assert snapshot(index) == seen
        return seen, index.stats()["tombstones"]


@pytest.mark.parametrize("kind", [*OPERATIONS, "close"])
def test_disk_full_at_every_write_step(
    kind: str,
    base: Path,
    limiter: tuple[Limiter, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit, folder = limiter
    with VoyagerIndex.open(base, read_only=True) as index:
        before = snapshot(index)
        tombstones_before = index.stats()["tombstones"]
    after = _outcome(base, tmp_path / "unlimited", kind)
    caplog.set_level(logging.WARNING, logger="sauerkraut_rag")

    def prepare() -> VoyagerIndex:
        copy_folder(base, folder)
        index = VoyagerIndex.open(folder)
        if kind == "close":
            index.add(*_batch(30))  # unsaved graph changes: close() saves the graph
        return index

    def run(index: VoyagerIndex) -> Any:
        if kind == "close":
            return index.close()
        return OPERATIONS[kind](index)

    def check(index: VoyagerIndex, attempt: Attempt) -> None:
        index.close()  # after a fault too: releases everything, never raises
        if kind == "close":
            assert attempt.error is None, f"close() raised {attempt.error!r}"
        else:
            if attempt.error is not None:
                error = assert_storage_error(attempt.error, kind)
                assert isinstance(error, StorageFullError)
        stored, tombstones = _stored(folder)
        if attempt.error is None:
            assert stored == after, f"{kind} reported success with {attempt.free} B free"
            if kind == "compact":
                assert tombstones == 0
        else:
            assert stored == before, f"{kind} failed with {attempt.free} B free, state changed"
            assert tombstones == tombstones_before

    result = sweep(limit, prepare, run, check)
    if kind != "close":
        assert result.failures, "the sweep never hit a full disk"
    if kind == "add":  # the add after which the merge failed still reported success
        assert "merging vector segments failed after the commit" in caplog.text


def test_failed_merge_is_retried_later(base: Path, limiter: tuple[Limiter, Path]) -> None:
    """Row 1 of issue 14: the commit stands, the merge waits, ``add`` never lies."""
    _, folder = limiter
    copy_folder(base, folder)
    with VoyagerIndex.open(folder) as index:
        merges = {"running": False, "failed": 0}
        original_merge, original_segment = housekeeping.maybe_merge, writes.Writer.new_segment

        def merge(writer: writes.Writer, snap: Any) -> Any:
            merges["running"] = True
            try:
                return original_merge(writer, snap)
            finally:
                merges["running"] = False

        def segment(self: writes.Writer, *args: Any) -> Any:
            if merges["running"]:  # the disk is full when the merged file is written
                merges["failed"] += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            return original_segment(self, *args)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(housekeeping, "maybe_merge", merge)
            patch.setattr(writes.Writer, "new_segment", segment)
            index.add(*_batch(40))  # succeeds although its merge fails
        assert merges["failed"] == 1 and "s40-0" in index
        with pytest.raises(Exception, match="already stored"):
            index.add(*_batch(40))
        segments = len(index._snap.segments)
        index._writer.merge_retry_at = 0.0  # the retry pause is over
        index.add(*_batch(41))
        assert len(index._snap.segments) < segments + 1  # the merge happened this time


def test_read_only_file_system(base: Path, tmp_path: Path) -> None:
    """A read-only mount (EROFS from the kernel): a writable open fails with a typed
    error and leaves nothing behind; read-only opens work there."""
    with small_tmpfs(tmp_path / "disk") as mount:
        if mount is None:
            pytest.skip("needs a tmpfs and a read-only bind mount (root)")
        copy_folder(base, mount / "index")
        view = tmp_path / "ro"
        view.mkdir()
        subprocess.run(["mount", "--bind", "-o", "ro", str(mount), str(view)], check=True)
        try:
            with pytest.raises(IndexStorageError) as caught:
                VoyagerIndex.open(view / "index")
            assert caught.value.operation == "open" and caught.value.errno == errno.EROFS
            assert "read-only" in str(caught.value) and caught.value.committed is False
            with VoyagerIndex.open(view / "index", read_only=True) as reader:
                assert snapshot(reader) == _stored(base)[0]
                assert len(reader.search(random_docs(1, DIM, seed=4), 3)[0]) == 3
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.parametrize("where", ["segment", "database", "read-only"])
def test_io_errors_are_typed(base: Path, tmp_path: Path, where: str) -> None:
    """EIO from a segment write, SQLite's disk I/O error, or a disk that turned read-only
    under the writer (EROFS): typed, nothing stored, the handle keeps working after."""
    folder = tmp_path / "index"
    copy_folder(base, folder)
    index = VoyagerIndex.open(folder)
    before = snapshot(index)
    with pytest.MonkeyPatch.context() as patch:
        if where in ("segment", "read-only"):
            code = errno.EIO if where == "segment" else errno.EROFS

            def broken(*args: Any, **kwargs: Any) -> Any:
                raise OSError(code, os.strerror(code))

            patch.setattr(writes, "write_segment", broken)
        else:

            def broken_insert(*args: Any, **kwargs: Any) -> Any:
                raise sqlite3.OperationalError("disk I/O error")

            patch.setattr(index_sql, "insert_docs", broken_insert)
        with pytest.raises(IndexStorageError) as caught:
            index.add(*_batch(60))
    assert not isinstance(caught.value, StorageFullError)
    assert ("read-only" if where == "read-only" else "I/O error") in str(caught.value)
    assert caught.value.data_intact and caught.value.operation == "add"
    assert snapshot(index) == before
    index.add(*_batch(60))  # the handle stays usable once the disk is healthy
    index.close()
    assert "s60-0" in _stored(folder)[0]
