"""One loaded model per process: a weak, thread-safe cache of encoders by load arguments.

A store, a retriever and a reranker built from the same folder (or hub id) with the same
device and dtype share one encoder object, so the weights sit in memory once.  Entries
are weak: when no object holds an encoder any more, it is freed and the next call loads
it again.  Two threads asking for the same model at once load it once (the second waits
for the first).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_entries: weakref.WeakValueDictionary[Hashable, Any] = weakref.WeakValueDictionary()
_guard = threading.Lock()
_key_locks: dict[Hashable, threading.Lock] = {}


def model_key(name_or_path: str | Path) -> Hashable:
    """The same key for every spelling of one local folder; hub ids as given.

    A local folder's key includes the size and modification time of its top-level files,
    so a checkpoint rewritten in place is loaded again rather than served stale.
    """
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return str(name_or_path)
    folder = path.resolve()
    state = []
    for entry in sorted(folder.iterdir()):
        try:
            info = entry.stat()
        except OSError:
            continue
        state.append((entry.name, info.st_size, info.st_mtime_ns))
    return (str(folder), tuple(state))


def options_key(options: dict[str, Any]) -> Hashable:
    """A hashable form of keyword options (values that cannot be hashed compare by repr)."""
    items = []
    for name in sorted(options):
        value = options[name]
        try:
            hash(value)
        except TypeError:
            value = ("repr", repr(value))
        items.append((name, value))
    return tuple(items)


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The live object stored under ``key``, or ``load()`` stored there (weakly)."""
    with _guard:
        found = _entries.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # one loader per key; others wait and then find its result
        with _guard:
            found = _entries.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        try:
            value = load()
            with _guard:
                _entries[key] = value
        finally:
            with _guard:
                _key_locks.pop(key, None)
        return value


def clear() -> None:
    """Forget every cached encoder (objects still in use stay alive where they are held)."""
    with _guard:
        _entries.clear()
