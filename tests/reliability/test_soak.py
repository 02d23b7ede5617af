"""Soak: ten minutes of mixed add / search / delete on a 20,000-document index.

Resident memory must stay flat after warm-up (its peak over the last compaction cycles
exceeds the peak right after warm-up by < 10 %) and no file descriptor may leak. The
loop runs in a fresh process (``benchmarks/soak.py``), so the
figures are those of the index alone, not of pytest with torch loaded. Slow: run with
``pytest -m slow tests/reliability/test_soak.py``; ``SAUERKRAUT_SOAK_SECONDS`` shortens
the loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.soak_loop import MIN_CYCLES, SoakReport

SECONDS = os.environ.get("SAUERKRAUT_SOAK_SECONDS", "600")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_soak_keeps_memory_and_descriptors_flat(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    command = [sys.executable, str(SCRIPT), "--seconds", SECONDS, "--docs", "20000"]
    done = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = SoakReport.from_json(out.read_text(encoding="utf-8"))
    assert report.compactions >= MIN_CYCLES, "too few cycles: run the loop longer"
    assert report.added == report.deleted > 0 and report.searches > 0
    assert all(s.docs == 20_000 for s in report.samples)
    assert report.rss_growth < 0.10, done.stdout
    assert report.fds_at_end <= report.fds_after_warmup, done.stdout
