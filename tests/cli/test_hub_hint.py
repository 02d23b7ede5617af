"""The "model not found" hint names a command the installed huggingface_hub provides."""

from __future__ import annotations

import re
from importlib.metadata import distribution
from pathlib import Path

from tests.test_cli import REPO, assert_one_line_error, cli


def _hub_commands() -> set[str]:
    entry_points = distribution("huggingface_hub").entry_points
    return {ep.name for ep in entry_points if ep.group == "console_scripts"}


def test_offline_hint_names_an_installed_hub_command(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hallo Welt.", "utf-8")
    run = cli("index", tmp_path / "a.txt", "--index", tmp_path / "idx", "--model", "org/nope")
    assert_one_line_error(run, "org/nope", "--model PATH")
    command = re.search(r"\((\S+) download ID --local-dir PATH", run.stderr)
    assert command is not None, run.stderr
    assert command.group(1) in _hub_commands()


def test_readme_names_only_installed_hub_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    used = set(re.findall(r"`(\S+) download VAGOsolutions/", readme))
    assert used and used <= _hub_commands()
