"""Put a local checkpoint folder into a Hugging Face cache so it loads by hub id offline.

Lets tests call ``load_encoder("VAGOsolutions/...")`` exactly as a user would,
with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` pointing at a temporary cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def install_in_hf_cache(folder: Path, repo_id: str, cache_dir: Path) -> Path:
    """Copy ``folder`` into ``cache_dir`` in the hub cache layout; return the snapshot path."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / FAKE_COMMIT
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(FAKE_COMMIT)
    return snapshot


def use_offline_cache(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    """Point huggingface_hub at ``cache_dir`` in offline mode for the current test."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache_dir), raising=False)
