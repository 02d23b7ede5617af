"""Soak run: 10 minutes of mixed add / search / delete on a 20k-document index.

Prints the resident memory and open file descriptors right after warm-up and at the
end, the growth between them, and the operation counts. The loop itself lives in
``tests/reliability/soak_loop.py`` (shared with the slow test ``test_soak.py``).

    /work/venv/bin/python benchmarks/soak.py [--seconds 600] [--docs 20000] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="loop length (600)")
    parser.add_argument("--docs", type=int, default=20_000, help="live documents (20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.reliability.soak_loop import (
        BATCH,
        MIN_CYCLES,
        QUERIES_PER_ITERATION,
        WARMUP_CYCLES,
        run_soak,
    )

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = run_soak(Path(tmp) / "index", seconds=args.seconds, docs=args.docs, seed=args.seed)
    if args.json is not None:
        args.json.write_text(report.to_json(), encoding="utf-8")
    mib = 1 << 20
    rate = report.iterations / report.seconds
    print(f"documents: {report.docs} live (build {report.build_seconds:.1f} s)")
    print(
        f"loop: {report.seconds:.0f} s, {report.iterations} iterations ({rate:.1f}/s), each "
        f"+{BATCH} docs, {QUERIES_PER_ITERATION} searches, -{BATCH} docs"
    )
    print(
        f"totals: {report.added} added, {report.deleted} deleted, {report.searches} searches, "
        f"{report.compactions} compactions, {report.reopens} close+reopen"
    )
    if report.compactions < MIN_CYCLES:
        print(f"only {report.compactions} compaction cycles: too short for growth figures")
    else:
        warm, end = report.after_warmup, report.at_end
        print(
            f"RSS peak in cycles {warm.start}-{warm.stop - 1} (after {WARMUP_CYCLES} warm-up "
            f"cycles): {report.rss_after_warmup / mib:.1f} MiB; in cycles "
            f"{end.start}-{end.stop - 1} "
            f"(last): {report.rss_at_end / mib:.1f} MiB; growth {100 * report.rss_growth:+.1f}% "
            "(limit +10%)"
        )
        print(
            f"open fds besides segment maps: peak {report.fds_after_warmup} after warm-up, "
            f"{report.fds_at_end} at end"
        )
    print(
        "per compaction cycle: peak RSS MiB (anonymous + mapped file pages) / peak fds / "
        "peak fds besides segment maps / samples / seconds at the cycle's end / main malloc "
        "arena at the RSS peak, MiB in use + freed but kept (glibc mallinfo2)"
    )
    for cycle in range(report.compactions + 1):
        samples = [s for s in report.samples if s.cycle == cycle]
        if samples:
            top = max(samples, key=lambda s: s.rss)
            rss, anon, file = top.rss / mib, top.rss_anon / mib, top.rss_file / mib
            fds = max(s.fds for s in samples)
            other = max(s.other_fds for s in samples)
            used, free = top.heap_used / mib, top.heap_free / mib
            print(
                f"  cycle {cycle:2d}: {rss:7.1f} ({anon:6.1f} + {file:6.1f}) {fds:4d} "
                f"{other:4d} {len(samples):4d} {samples[-1].t:6.0f}   {used:6.1f} + {free:6.1f}"
            )


if __name__ == "__main__":
    main()
