"""Page ingestion: ``iter_pages`` against bare pypdfium2 loops, measured in one run.

Usage::

    python benchmarks/page_ingestion.py                 # 200 pages at 144 DPI
    python benchmarks/page_ingestion.py --pages 1000 --dpi 144

Each method runs in a fresh child process over the same generated PDF (see
``tests/pdf_factory.py``) so its peak resident memory (``ru_maxrss``) is its own;
"peak-import" subtracts the resident memory right after the imports (importing
``sauerkraut_rag`` loads torch):

* ``iter_pages``: ``sauerkraut_rag.documents.pages.iter_pages`` (hashing, metadata, per-page close).
* ``pdfium-loop``: the least work possible with pypdfium2: render, ``to_pil``, drop.
* ``pdfium-list``: the same pages collected into a list first, which is what
  ``pdf2image.convert_from_path`` and peers that return "all pages" do.

Timings are the median of ``--repeats`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("iter_pages", "pdfium-loop", "pdfium-list")


def run_method(method: str, pdf: Path, dpi: int) -> int:
    """Ingest ``pdf`` once with ``method``; return the number of pages."""
    if method == "iter_pages":
        from sauerkraut_rag.documents.pages import iter_pages

        return sum(1 for _ in iter_pages(pdf, dpi=dpi, show_progress=False))
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        images = []
        for index in range(len(document)):
            page = document[index]
            image = page.render(scale=dpi / 72).to_pil()
            page.close()
            if method == "pdfium-list":
                images.append(image)
        return len(document)
    finally:
        document.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def child(method: str, pdf: Path, dpi: int, repeats: int) -> None:
    if method == "iter_pages":
        import sauerkraut_rag.documents.pages  # noqa: F401  (imports the package, including torch)
    else:
        import pypdfium2  # noqa: F401
    imported_mb = _rss_mb()
    run_method(method, pdf, dpi)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run_method(method, pdf, dpi)
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"pages": n, "seconds": statistics.median(times), "peak_mb": peak_kb / 1024}
    print(json.dumps({**result, "imported_mb": imported_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--dpi", type=int, default=144)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=METHODS)
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pdf, args.dpi, args.repeats)
        return
    sys.path.insert(0, str(ROOT))
    from tests.pdf_factory import make_pdf

    with tempfile.TemporaryDirectory() as tmp:
        pdf = make_pdf(Path(tmp) / "bench.pdf", args.pages)
        results = {}
        for method in METHODS:
            command = [sys.executable, __file__, "--child", method, "--pdf", str(pdf)]
            command += ["--dpi", str(args.dpi), "--repeats", str(args.repeats)]
            out = subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = results["pdfium-loop"]
    print(f"{args.pages} pages at {args.dpi} DPI, median of {args.repeats}")
    print(
        f"{'method':<12} {'s':>8} {'pages/s':>9} {'x loop':>7} {'peak MB':>9} "
        f"{'after import':>12} {'peak-import':>11}"
    )
    for method, r in results.items():
        print(
            f"{method:<12} {r['seconds']:8.3f} {r['pages'] / r['seconds']:9.1f} "
            f"{r['seconds'] / ref['seconds']:7.2f} {r['peak_mb']:9.0f} "
            f"{r['imported_mb']:12.0f} {r['peak_mb'] - r['imported_mb']:11.0f}"
        )


if __name__ == "__main__":
    main()
