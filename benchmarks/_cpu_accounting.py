"""CPU-time accounting for benchmark children: wall, process CPU, per-thread CPU, load.

On a shared machine wall time measures the neighbours as much as the code; CPU time per
thread does not.  :class:`Span` records, around a block of work:

- ``wall`` (``perf_counter``) and ``cpu`` (``process_time``: all threads, user + system);
- ``main_cpu`` (the calling thread) and ``other_cpu`` (every other thread: OpenMP/MKL
  workers, tokenizer or BLAS pools), read from ``/proc/self/task/*/stat``;
- the 1-minute load average before and after.

**Serial share.**  With ``n`` intra-op threads the calling thread runs the serial work
``S`` (Python, dispatch, ops too small to split, preprocessing) plus its ``1/n`` of the
parallel work ``P``; each worker runs only its ``P/n``.  So ``S ~ main - other/(n-1)`` and
``P ~ n * other/(n-1)``, and Amdahl's law predicts the speed-up on an idle machine as
``(S + P) / (S + P/n)``.  The estimate needs the workers to sleep rather than spin
while they wait (``OMP_WAIT_POLICY=PASSIVE`` for torch's OpenMP pool and
``OPENBLAS_THREAD_TIMEOUT=4`` for numpy's OpenBLAS pool, which :func:`passive_wait_env`
sets for a child); spinning adds CPU time to the workers that is not work.  With two
pools (search runs numpy and torch products) each pool's workers count alike, so the
estimate holds as long as every pool runs ``n`` threads.  It assumes parallel
regions are split evenly (an uneven split shows up as serial time), and it cannot see
hardware limits: two vCPUs that are hyperthreads of one core, or memory bandwidth.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of every thread of this process, by thread id."""
    result: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # not Linux: report the process as one thread
        return {os.getpid(): time.process_time()}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        result[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICKS
    return result


def load_average() -> float:
    """The 1-minute load average (``nan`` where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


@dataclass
class Span:
    """Wall, CPU and per-thread CPU of one measured block (see the module docstring)."""

    wall: float = 0.0
    cpu: float = 0.0
    main_cpu: float = 0.0
    other_cpu: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0

    def __enter__(self) -> Span:
        self.load_before = load_average()
        self._threads = thread_cpu_seconds()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        after = thread_cpu_seconds()
        main = os.getpid()
        deltas = {tid: t - self._threads.get(tid, 0.0) for tid, t in after.items()}
        self.main_cpu = deltas.pop(main, 0.0)
        self.other_cpu = sum(deltas.values())
        self.load_after = load_average()

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def amdahl(main_cpu: float, other_cpu: float, threads: int) -> dict[str, float]:
    """Serial/parallel CPU seconds and the idle-machine speed-up they predict."""
    if threads < 2:
        return {"serial": main_cpu + other_cpu, "parallel": 0.0, "predicted_speedup": 1.0}
    per_worker = other_cpu / (threads - 1)
    serial = max(main_cpu - per_worker, 0.0)
    parallel = threads * per_worker
    total = serial + parallel
    predicted = total / (serial + parallel / threads) if total > 0 else 1.0
    return {"serial": serial, "parallel": parallel, "predicted_speedup": predicted}


def passive_wait_env(env: dict[str, str], threads: int) -> dict[str, str]:
    """``env`` for a child that runs ``threads`` intra-op threads with sleeping waiters.

    Thread-count variables inherited from the caller (a test run's ``OMP_NUM_THREADS=1``)
    are replaced, so the child really runs ``threads`` threads.
    """
    out = dict(env)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        out[name] = str(threads)
    out["OMP_WAIT_POLICY"] = "PASSIVE"
    out["OPENBLAS_THREAD_TIMEOUT"] = "4"  # numpy's OpenBLAS pool: spin 2**4 loops, then sleep
    out["TOKENIZERS_PARALLELISM"] = "false"
    return out
