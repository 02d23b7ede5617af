"""Background insertion of committed documents into the HNSW graph.

Inserting a document into the graph costs milliseconds of CPU (an FDE vector has
thousands of dimensions), far more than storing it, so a write does not wait for it:
the write commits and publishes its snapshot, and this thread inserts the new
documents afterwards, in order. Until then they are the snapshot's "tail", which every
approximate search scores exactly next to the graph's candidates
(:meth:`Snapshot.tail_start`), so search results never miss a committed document.

Voyager releases the GIL while it inserts, so the work runs beside searches and the
writer. ``drain()`` waits until the graph has caught up (``save()`` and ``close()`` do,
so a saved graph holds every document); a graph that cannot be extended is marked
failed, and searches then score exactly until the index is reopened or compacted.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from sauerkraut_rag.retrievers.voyager import cells_upkeep
from sauerkraut_rag.retrievers.voyager import hnsw as hnsw_ops
from sauerkraut_rag.retrievers.voyager.config import IndexConfig
from sauerkraut_rag.retrievers.voyager.gate import Gate
from sauerkraut_rag.retrievers.voyager.locks import RWLock
from sauerkraut_rag.retrievers.voyager.state import Snapshot

logger = logging.getLogger(__name__)

CHUNK_DOCS = 64
"""Documents inserted per step (the cover advances after each)."""
MAX_TAIL = 20_000
"""A write waits while more documents than this are not in the graph yet (back-pressure:
in the long run writes cannot outpace the graph, or searches would turn exact)."""
IDLE_SECONDS = 2.0
"""An idle indexer thread exits after this long (a new one starts with the next write)."""
_LIVE: weakref.WeakSet[Indexer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop indexer threads before the interpreter tears down the graph's bindings."""
    for indexer in list(_LIVE):
        indexer.stop()


class Indexer:
    """One background thread per open handle that keeps its graph caught up."""

    def __init__(
        self,
        current: Callable[[], Snapshot],
        config: IndexConfig,
        muvera: Any,
        lock: RWLock,
        *,
        threads: int,
        on_added: Callable[[int], None] | None = None,
        gate: Gate | None = None,
        cells_training: Callable[[], bool] | None = None,
        on_cells: Callable[[], None] | None = None,
    ) -> None:
        self._current = current
        self._config = config
        self._muvera = muvera
        self._lock = lock
        self._threads = threads
        self._on_added = on_added
        self._cells_training = cells_training or (lambda: False)
        self._on_cells = on_cells
        self._gate = gate or Gate()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopped = False
        self._busy = False

    def notify(self) -> None:
        """New documents were published: insert them (starts the thread when needed)."""
        with self._cond:
            if self._stopped:
                return
            idle = self._thread is None or not self._thread.is_alive()
            if idle or self._pid != os.getpid():  # first use, idle exit, or forked
                self._pid = os.getpid()
                _LIVE.add(self)
                self._thread = threading.Thread(
                    target=self._run, name="sauerkraut-rag-indexer", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float | None = None, *, tail: int = 0) -> bool:
        """Wait until at most ``tail`` documents of the current snapshot are missing from
        the graph (``0``: all are in it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._behind(self._current()) > tail and not self._stopped:
                if self._thread is None or not self._thread.is_alive():
                    self._cond.release()
                    try:
                        self._step()  # no thread (e.g. after a fork): do it here
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.notify_all()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        """Stop the thread after its current step (the rest is caught up on open)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join()

    def _behind(self, snap: Snapshot) -> int:
        """Documents of ``snap`` not yet in the graph or the token cells (0 when there is
        nothing to do)."""
        graph = snap.n_docs - snap.tail_start() if self._pending(snap) else 0
        return max(graph, cells_upkeep.behind(snap, may_train=self._cells_training()))

    def _work(self, snap: Snapshot) -> bool:
        """Whether the graph or the token cells have something to catch up."""
        training = self._cells_training()
        return self._pending(snap) or cells_upkeep.pending(snap, may_train=training)

    @staticmethod
    def _pending(snap: Snapshot) -> bool:
        cover = snap.graph_cover
        usable = snap.hnsw is not None and snap.hnsw_complete and cover is not None
        if not usable or cover.rows < 0:  # no graph, or it failed: nothing to do
            return False
        return cover.rows < snap.next_row and snap.tail_start() < snap.n_docs

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._work(self._current()):
                    self._busy = False
                    self._cond.notify_all()
                    if not self._cond.wait(IDLE_SECONDS) and not self._work(self._current()):
                        self._thread = None  # idle: the next notify() starts a new one
                        return
                if self._stopped:
                    self._cond.notify_all()
                    return
                self._busy = True
            with self._gate.search():  # yields to a writer like a search does
                self._step()
            with self._cond:
                self._cond.notify_all()

    def _step(self) -> None:
        """Insert the next chunk of the tail into the graph and advance the cover, then
        code the next tokens for the token cells (see :mod:`.cells_upkeep`)."""
        self._graph_step()
        training = self._cells_training()
        changed = cells_upkeep.advance(self._current(), may_train=training, seed=self._config.seed)
        if changed and self._on_cells is not None:
            self._on_cells()

    def _graph_step(self) -> None:
        snap = self._current()
        if not self._pending(snap):
            return
        cover, graph = snap.graph_cover, snap.hnsw
        start = snap.tail_start()
        positions = np.flatnonzero(snap.live[start:])[:CHUNK_DOCS] + start
        last = int(positions[-1]) if positions.size else snap.n_docs - 1
        reach = int(snap.rows[last + 1]) if last + 1 < snap.n_docs else snap.next_row
        try:
            added = 0
            if positions.size:
                added = hnsw_ops.insert(
                    graph,
                    snap,
                    positions,
                    self._config,
                    self._muvera,
                    self._lock,
                    threads=self._threads,
                )
            self._hide_deleted(graph, snap.rows[positions])
        except Exception:
            logger.exception(
                "inserting into the HNSW graph failed; the documents are stored, and "
                "search scores exactly until the index is reopened or compacted"
            )
            cover.rows = -1  # every document counts as tail: exact search
            return
        if cover.rows >= 0:
            cover.rows = max(cover.rows, reach)
        if added and self._on_added is not None:
            self._on_added(added)

    def _hide_deleted(self, graph: Any, rows: np.ndarray) -> None:
        """Documents deleted while they were being inserted: their delete found nothing
        to hide in the graph, so hide them now."""
        current = self._current()
        if current.hnsw is not graph or not rows.size:
            return
        here = current.positions_of_rows(rows)
        gone = here[here >= 0]
        gone = gone[~current.live[gone]]
        if gone.size:
            labels = current.labels_of(gone, self._config.strategy)
            hnsw_ops.mark_deleted(graph, labels, self._lock)
