"""Which torch ops of a page forward run on one thread: a per-op CPU-time census.

``thread_scaling.py --parts census`` runs :func:`census` in a child with two intra-op
threads and ``OMP_WAIT_POLICY=PASSIVE``.  A ``TorchDispatchMode`` wraps every aten op
and reads, around it, the CPU clock of the calling thread (``time.thread_time``) and of
every other thread of the process (Linux per-thread CPU clocks, ``clock_gettime`` on
``MAKE_THREAD_CPUCLOCK(tid)``).  An op whose workers used about as much CPU as the
calling thread ran in parallel; one whose workers used none ran serially.  The CPU the
calling thread spends between ops (Python, module calls, dispatch; inflated somewhat by
the census itself) is serial too.  CPU time does not depend on what else runs on the
machine, so the census is valid on a busy machine, unlike wall-time ratios.

Ops are grouped by name; ``linear`` also by its ``(M, K) x (N, K)`` shape, because the
matrix-product kernels choose their thread split per shape.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any

PER_THREAD_CLOCK = 4 | 2  # CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_SCHED (linux/posix-timers.h)


def _thread_clock(tid: int) -> int:
    return ((~tid) << 3) | PER_THREAD_CLOCK


def _other_threads() -> list[int]:
    main = os.getpid()
    return [int(t) for t in os.listdir("/proc/self/task") if int(t) != main]


def make_census_mode() -> Any:
    """A ``TorchDispatchMode`` that accumulates ``name -> [calls, main_cpu, worker_cpu]``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Census(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
            self.tids = _other_threads()

        def workers(self) -> float:
            total = 0.0
            for tid in self.tids:
                try:
                    total += time.clock_gettime(_thread_clock(tid))
                except OSError:  # the thread ended
                    continue
            return total

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
            w0, m0 = self.workers(), time.thread_time()
            out = func(*args, **(kwargs or {}))
            m1, w1 = time.thread_time(), self.workers()
            name = func.__name__
            if name.startswith("linear") and len(args) > 1:
                x, w = args[0], args[1]
                name = f"linear ({x.numel() // x.shape[-1]}, {x.shape[-1]})x{tuple(w.shape)}"
            row = self.rows[name]
            row[0] += 1
            row[1] += m1 - m0
            row[2] += w1 - w0
            return out

    return Census()


def census(encode: Any, page: Any, *, top: int = 12) -> dict[str, Any]:
    """Run ``encode(page)`` once under the census; totals and the ``top`` most serial ops."""
    encode(page)  # warm-up: thread pool up, kernels chosen
    mode = make_census_mode()
    mode.tids = _other_threads()
    main0, proc0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    with mode:
        encode(page)
    main = time.thread_time() - main0
    process, wall = time.process_time() - proc0, time.perf_counter() - wall0
    in_ops = sum(r[1] for r in mode.rows.values())
    workers = sum(r[2] for r in mode.rows.values())
    ops = [
        {"op": name, "calls": int(r[0]), "main": r[1], "workers": r[2], "serial": r[1] - r[2]}
        for name, r in mode.rows.items()
    ]
    ops.sort(key=lambda o: -o["serial"])
    serial = (main - in_ops) + sum(max(o["serial"], 0.0) for o in ops)
    total = main + workers
    return {
        "wall": wall,
        "process_cpu": process,
        "main_cpu": main,
        "main_outside_ops": main - in_ops,
        "workers_in_ops": workers,
        "serial": serial,
        "predicted_speedup": total / (serial + (total - serial) / 2) if total else 1.0,
        "top": ops[:top],
    }


def report(title: str, result: dict[str, Any]) -> list[str]:
    """Markdown lines for one census."""
    lines = [
        title,
        f"calling thread {result['main_cpu']:.2f} CPU s ({result['main_outside_ops']:.2f} "
        f"between ops), other threads {result['workers_in_ops']:.2f} CPU s; serial "
        f"{result['serial']:.2f} CPU s -> predicted 2-thread speed-up on an idle machine "
        f"{result['predicted_speedup']:.2f}x",
        "| op (most serial first) | calls | calling-thread CPU s | other-threads CPU s |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {o['op']} | {o['calls']} | {o['main']:.3f} | {o['workers']:.3f} |"
        for o in result["top"]
    ]
    return lines
