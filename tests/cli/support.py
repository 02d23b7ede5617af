"""Helpers for the command-line tests: run ``sauerkraut-rag`` with stdin, build small indexes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_cli import Run


def run_cli(*args: str | Path, stdin: str | None = None, cwd: Path | None = None) -> Run:
    """``python -m sauerkraut_rag.cli ARGS`` in a fresh offline process, ``stdin`` piped in."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "sauerkraut_rag.cli", *map(str, args)],
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


NO_TORCH_SNIPPET = """
import sys
from sauerkraut_rag.cli.main import main
for argv in {argvs!r}:
    code = main(argv)
    if code != 1 or "torch" in sys.modules:
        print("FAILED", argv, code, "torch" in sys.modules)
        raise SystemExit(3)
print("OK", len({argvs!r}))
"""


def assert_fail_without_torch(argvs: list[list[str]]) -> str:
    """Run each argv in one process: each must exit 1 without torch ever being imported."""
    code = NO_TORCH_SNIPPET.format(argvs=argvs)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "OK" in done.stdout, (done.stdout, done.stderr)
    return done.stderr
