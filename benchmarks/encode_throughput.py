"""Encoder throughput: our encoders against their reference implementations, same run.

Usage::

    python benchmarks/encode_throughput.py                       # every model
    python benchmarks/encode_throughput.py --models text --docs 500 --rounds 3

``text``: documents/s of our ColBERT encoder vs PyLate 1.6.0's ``ColBERT.encode`` on the
same random-init checkpoint with the 15m model's shape (BERT, hidden 288, 10 layers,
12 heads, 128-d Dense; intermediate size 1152 = 4 x hidden is an assumption, the
published config is not readable here), document_length 2048 as on the model card.
Documents have lognormal token lengths (median 200, sigma 0.9, clipped to 20-2048).
Both encoders run in fresh child processes (PyLate in its own venv, see
``tests/fixtures/make_colbert_golden.py`` for how to create it; override its
interpreter with ``--pylate-python`` or ``$PYLATE_PYTHON``), alternating order each
round so load from other processes hits both alike; the table shows the best round and
the median.  The vectors of the first round are compared to check both did the same
work.

``collfm2`` / ``colqwen3``: pages/s at the real shapes on 512x512 pages against the
authors' reference implementation; see ``_collfm2_bench.py`` / ``_colqwen3_bench.py``
(options ``--pages``, ``--page-rounds``, ``--reference-python``).

``--compare-dtype bfloat16``: for the page models, ours in float32 against ours in
bfloat16 instead of the reference (speed per page, per-token cosine, top-10 overlap;
see ``_precision_bench.py``), at ``--size real`` (default) or ``tiny``::

    python benchmarks/encode_throughput.py --models collfm2,colqwen3 \
        --compare-dtype bfloat16 --pages 40 --queries 16 --page-rounds 2
    python benchmarks/encode_throughput.py --models collfm2,colqwen3 \
        --compare-dtype bfloat16 --size tiny --pages 24       # smoke run, seconds

``--threads N`` sets the torch threads of every child (0: torch's default, the number of
physical cores); thread variables of the calling shell (``OMP_NUM_THREADS=1`` from a
test setup) are not passed on.  ``--checkpoints DIR`` keeps the random checkpoints there
for later runs (``thread_scaling.py`` takes the same option).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _page_bench import clean_env

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_encode_worker.py"
DEFAULT_PYLATE_PYTHON = "/tmp/pylate-venv/bin/python"

TEXT_SHAPE = {
    "hidden": 288,
    "layers": 10,
    "heads": 12,
    "intermediate": 1152,
    "out_features": 128,
    "query_length": 256,
    "document_length": 2048,
    "max_position_embeddings": 2048,
}


def make_documents(n_docs: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Documents of whole-word tokens with lognormal target lengths; returns texts, lengths."""
    sys.path.insert(0, str(REPO))
    from tests.factories.colbert import tiny_vocab

    words = [w for w in tiny_vocab() if w.isalpha() and len(w) > 1 and not w.startswith("##")]
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(200), 0.9, n_docs).astype(int), 20, 2048)
    docs = [" ".join(rng.choice(words, size=int(n) - 3)) for n in lengths]
    return docs, lengths


def _run_worker(
    python: str,
    impl: str,
    checkpoint: Path,
    docs: Path,
    args: argparse.Namespace,
    out: Path | None,
) -> dict[str, Any]:
    cmd = [
        python,
        str(WORKER),
        "--impl",
        impl,
        "--checkpoint",
        str(checkpoint),
        "--docs",
        str(docs),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
    ]
    if out is not None:
        cmd += ["--out", str(out)]
    env = clean_env(args.threads)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_abs_diff(a: Path, b: Path) -> float:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        if x.files != y.files:
            return float("inf")
        worst = 0.0
        for key in x.files:
            if x[key].shape != y[key].shape:
                return float("inf")
            worst = max(worst, float(np.abs(x[key] - y[key]).max(initial=0.0)))
    return worst


def bench_text(args: argparse.Namespace) -> list[str]:
    """Documents/s: our ColBERT encoder vs PyLate ``encode``; returns report lines."""
    sys.path.insert(0, str(REPO))
    from tests.factories.colbert import build_tiny_colbert

    pylate_python = args.pylate_python or os.environ.get("PYLATE_PYTHON", DEFAULT_PYLATE_PYTHON)
    if not Path(pylate_python).exists():
        return [
            f"text: PyLate interpreter {pylate_python} not found; create the venv as "
            "described in tests/fixtures/make_colbert_golden.py."
        ]
    with tempfile.TemporaryDirectory(prefix="bench-colbert-") as tmp:
        work = Path(tmp)
        checkpoint = build_tiny_colbert(work / "ckpt", seed=args.seed, **TEXT_SHAPE)
        docs, lengths = make_documents(args.docs, args.seed)
        docs_file = work / "docs.json"
        docs_file.write_text(json.dumps(docs), encoding="utf-8")
        pythons = {"ours": sys.executable, "pylate": pylate_python}
        times: dict[str, list[float]] = {"ours": [], "pylate": []}
        cpu: dict[str, list[float]] = {"ours": [], "pylate": []}
        info: dict[str, dict[str, Any]] = {}
        for r in range(args.rounds):
            order = ("pylate", "ours") if r % 2 == 0 else ("ours", "pylate")
            for impl in order:
                out = work / f"{impl}.npz" if r == 0 else None
                res = _run_worker(pythons[impl], impl, checkpoint, docs_file, args, out)
                times[impl].append(res["seconds"])
                cpu[impl].append(res["cpu_seconds"])
                info[impl] = res
                print(
                    f"  round {r + 1} {impl:6s} wall {res['seconds']:8.2f} s "
                    f"cpu {res['cpu_seconds']:8.2f} s",
                    file=sys.stderr,
                )
        diff = _max_abs_diff(work / "ours.npz", work / "pylate.npz")
    lines = [
        f"text: {args.docs} documents, {int(lengths.sum())} tokens (median "
        f"{int(np.median(lengths))}, max {int(lengths.max())}), batch_size {args.batch_size}, "
        f"{info['ours']['threads']} torch threads, {args.rounds} rounds",
        "| encoder | best wall s | best docs/s | median wall s | median docs/s | best CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for impl in ("ours", "pylate"):
        best, median = min(times[impl]), statistics.median(times[impl])
        lines.append(
            f"| {impl} | {best:.2f} | {args.docs / best:.2f} | {median:.2f} | "
            f"{args.docs / median:.2f} | {min(cpu[impl]):.2f} |"
        )
    med = {impl: statistics.median(values) for impl, values in times.items()}
    lines.append(
        "ratio ours/pylate (docs/s): "
        f"best wall {min(times['pylate']) / min(times['ours']):.2f}x, "
        f"median wall {med['pylate'] / med['ours']:.2f}x, "
        f"best CPU time {min(cpu['pylate']) / min(cpu['ours']):.2f}x; "
        f"same vectors: max |diff| = {diff:.1e} over {info['ours']['vectors']} vectors"
    )
    return lines


def bench_collfm2(args: argparse.Namespace) -> list[str]:
    """Pages/s of ColLFM2 at its real shape on 512x512 pages (``_collfm2_bench.py``)."""
    if args.compare_dtype:
        from _precision_bench import bench_precision

        return bench_precision("collfm2", args)
    try:
        from _collfm2_bench import bench_collfm2 as run
    except ImportError:
        return ["collfm2: benchmarks/_collfm2_bench.py not found"]
    return run(args)


def bench_colqwen3(args: argparse.Namespace) -> list[str]:
    """Pages/s of ColQwen3 at its real shape on 512x512 pages (``_colqwen3_bench.py``)."""
    if args.compare_dtype:
        from _precision_bench import bench_precision

        return bench_precision("colqwen3", args)
    try:
        from _colqwen3_bench import bench_colqwen3 as run
    except ImportError:
        return ["colqwen3: benchmarks/_colqwen3_bench.py not found"]
    return run(args)


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "text": bench_text,
    "collfm2": bench_collfm2,
    "colqwen3": bench_colqwen3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=",".join(BENCHMARKS),
        help="comma-separated subset of: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="PyLate's default is 32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pylate-python", default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--pages", type=int, default=2, help="page models: pages per round")
    parser.add_argument("--page-rounds", type=int, default=1, help="page models: rounds")
    parser.add_argument(
        "--reference-python", default=None, help="page models: sauerkrautlm-colpali venv"
    )
    parser.add_argument(
        "--compare-dtype",
        default=None,
        metavar="DTYPE",
        help="page models: ours in float32 vs ours in DTYPE (e.g. bfloat16), not the reference",
    )
    parser.add_argument(
        "--size", choices=("real", "tiny"), default="real", help="with --compare-dtype"
    )
    parser.add_argument("--page-size", default="512x512", help="with --compare-dtype: WxH")
    parser.add_argument("--queries", type=int, default=16, help="with --compare-dtype")
    parser.add_argument("--checkpoints", default=None, metavar="DIR", help="reuse checkpoints")
    args = parser.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    for name in names:
        print("\n".join(BENCHMARKS[name](args)))


if __name__ == "__main__":
    main()
