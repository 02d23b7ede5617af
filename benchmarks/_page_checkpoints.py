"""Random-weight page-model checkpoints for benchmarks: tiny (test factories) or real shape.

``real``: the LFM2-VL-450M shape of ``_collfm2_bench.py`` (451M parameters, ~0.9 GB
bfloat16 on disk) and the pruned Qwen3-VL-1.7B shape of ``_colqwen3_bench.py`` (1.700B,
~3.4 GB); ``tiny``: the checkpoints of ``tests/factories`` (a few MB, seconds to run).
With ``cache`` set, a checkpoint is built once into ``cache/<model>-<size>-<seed>`` and
reused by later runs (a ``.complete`` marker is written last).  Building runs in a child
process, so the benchmark parent never holds the random weights (gigabytes at the real
ColQwen3 shape) while its workers load the model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WORKERS = {
    "collfm2": Path(__file__).resolve().parent / "_collfm2_worker.py",
    "colqwen3": Path(__file__).resolve().parent / "_colqwen3_worker.py",
}
SIZES = ("tiny", "real")


def build(model: str, size: str, folder: Path, *, seed: int) -> tuple[Path, int]:
    """Write a checkpoint under ``folder``; return its path and its parameter count."""
    sys.path.insert(0, str(REPO))
    if size == "real":
        if model == "collfm2":
            from _collfm2_bench import build_real_shape_checkpoint

            return folder / "ck", build_real_shape_checkpoint(folder, seed=seed)
        from _colqwen3_bench import build_real_shape_checkpoint as build_qwen

        return folder / "ck", build_qwen(folder / "ck", seed=seed)
    from safetensors import safe_open

    if model == "collfm2":
        from tests.factories.collfm2 import build_tiny_collfm2

        path = build_tiny_collfm2(folder / "ck", seed=seed)
    else:
        from tests.factories.colqwen3 import build_tiny_colqwen3

        path = build_tiny_colqwen3(folder / "ck", seed=seed)
    with safe_open(str(path / "model.safetensors"), "pt") as weights:
        shapes = [weights.get_slice(k).get_shape() for k in weights.keys()]  # noqa: SIM118
    count = sum(int(np.prod(shape)) for shape in shapes)
    return path, count


@contextmanager
def checkpoint(
    model: str, size: str, *, seed: int, cache: str | Path | None = None
) -> Iterator[tuple[Path, int]]:
    """``(path, parameters)`` of a checkpoint that lives as long as the ``with`` block
    (or in ``cache``, built there on first use)."""
    if model not in WORKERS or size not in SIZES:
        raise ValueError(f"model must be one of {sorted(WORKERS)} and size one of {SIZES}")
    if cache is None:
        with tempfile.TemporaryDirectory(prefix=f"bench-{model}-{size}-") as tmp:
            yield _build_in_child(model, size, Path(tmp), seed)
        return
    folder = Path(cache) / f"{model}-{size}-{seed}"
    marker = folder / ".complete"
    if not marker.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        path, count = _build_in_child(model, size, folder, seed)
        marker.write_text(json.dumps({"path": str(path), "parameters": count}), "utf-8")
    info = json.loads(marker.read_text("utf-8"))
    yield Path(info["path"]), int(info["parameters"])


def _build_in_child(model: str, size: str, folder: Path, seed: int) -> tuple[Path, int]:
    cmd = [sys.executable, __file__, model, size, str(folder), str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the {size} {model} checkpoint failed:\n{done.stderr[-3000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    return Path(info["path"]), int(info["parameters"])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    built, parameters = build(sys.argv[1], sys.argv[2], Path(sys.argv[3]), seed=int(sys.argv[4]))
    sys.stdout.write(json.dumps({"path": str(built), "parameters": parameters}) + "\n")
