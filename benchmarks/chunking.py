"""Text chunking before and after packing: chunk counts and hit@k on real text.

Corpus: the Markdown READMEs that installed packages ship in their ``*.dist-info/METADATA``
(the long description after the headers), from the running Python environment.  Real
prose with headings, lists and code, written by many authors.

Queries, two kinds, built from the text itself (no labels needed):

- *heading*: ``"<package> <section heading>"`` for every section whose body has at least
  25 words; a retrieved chunk is relevant when it is from that file and holds the start
  of the section's body (the first 60 characters of its first paragraph).  A chunk
  holding only the heading is not relevant: that is the failure mode of one chunk per
  paragraph.
- *sentence*: the second sentence (12+ words) of the section's first paragraph that has
  two such sentences; relevant when the chunk holds the sentence.  Needles never cross a
  paragraph boundary, so one chunk per paragraph can hold every one of them.

Both chunkers run with the same model and token counter: ``before`` is the earlier
one-chunk-per-paragraph chunker (copied here), ``after`` is
:func:`sauerkraut_rag.documents.chunking.chunk_text`.  Scores are exact MaxSim over all
chunks (no index), so hit@k does not depend on machine load.

Run::

    python benchmarks/chunking.py --files 40
"""

from __future__ import annotations

import argparse
import email
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sauerkraut_rag.documents.chunking import chunk_text  # noqa: E402

_BLANK = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


# ---------------------------------------------------------------------- the earlier chunker


def paragraph_chunks(
    text: str, count: Callable[[Sequence[str]], list[int]], limit: int
) -> list[str]:
    """The chunker before packing: one chunk per paragraph (headings joined to the next
    paragraph, a trailing heading alone), long paragraphs split at sentences."""
    blocks = [b.strip() for b in _BLANK.split(text.replace("\r\n", "\n")) if b.strip()]
    paragraphs: list[str] = []
    pending: list[str] = []
    for block in blocks:
        lines = block.splitlines()
        heading = all(line.lstrip().startswith("#") for line in lines) or (
            len(lines) == 1
            and len(block) <= 80
            and not block.endswith((".", "!", "?", ":", ";", "…", '"', "»", ")"))
        )
        if heading:
            pending.append(block)
            continue
        paragraphs.append("\n".join([*pending, block]))
        pending = []
    if pending:
        paragraphs.append("\n".join(pending))
    chunks: list[str] = []
    for paragraph, n in zip(paragraphs, count(paragraphs), strict=True):
        if n <= limit:
            chunks.append(paragraph)
            continue
        sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
        current: list[str] = []
        used = 0
        for sentence, m in zip(sentences, count(sentences), strict=True):
            if current and used + m > limit:
                chunks.append(" ".join(current))
                current, used = [], 0
            current.append(sentence)
            used += m
        if current:
            chunks.append(" ".join(current))
    return chunks


# ---------------------------------------------------------------------- corpus and queries


def readmes(limit: int) -> list[tuple[str, str]]:
    """``(package, markdown)`` of installed packages with a Markdown README of 3-60 KB."""
    found: dict[str, str] = {}
    for site in sorted({Path(p) for p in sys.path if p.endswith("site-packages")}):
        for meta in sorted(site.glob("*.dist-info/METADATA")):
            message = email.message_from_bytes(meta.read_bytes())
            if "markdown" not in (message.get("Description-Content-Type") or ""):
                continue
            body = message.get_payload()
            if not isinstance(body, str) or not 3_000 <= len(body) <= 60_000:
                continue
            if sum(1 for line in body.splitlines() if _HEADING.match(line)) < 3:
                continue
            found.setdefault(str(message.get("Name")), body)
    return sorted(found.items())[:limit]


def _norm(text: str) -> str:
    return " ".join(text.split())


def queries_of(package: str, text: str) -> list[tuple[str, str, str]]:
    """``(kind, query, needle)``: the needle is what a relevant chunk must contain."""
    out: list[tuple[str, str, str]] = []
    lines = text.splitlines()
    heads = [(i, m.group(1)) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    for n, (start, title) in enumerate(heads):
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        body = "\n".join(lines[start + 1 : end]).strip()
        if len(body.split()) < 25 or body.startswith(("```", "|", "<", "!", "[")):
            continue
        clean = re.sub(r"[`*_\[\]()]", "", title).strip()
        if not clean:
            continue
        paragraphs = [_norm(p) for p in _BLANK.split(body) if p.strip()]
        out.append(("heading", f"{package} {clean}", paragraphs[0][:60]))
        for paragraph in paragraphs:  # needles never cross a paragraph boundary
            sentences = [s for s in _SENTENCE_END.split(paragraph) if len(s.split()) >= 12]
            if len(sentences) > 1:
                out.append(("sentence", sentences[1], sentences[1]))
                break
    return out


# ---------------------------------------------------------------------- evaluation


def evaluate(encoder, files, chunker, limit, queries):  # type: ignore[no-untyped-def]
    from sauerkraut_rag.retrievers.maxsim import maxsim

    tokenizer = encoder.tokenizer

    def count(texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    chunks: list[tuple[str, str]] = []
    for package, text in files:
        chunks.extend((package, c) for c in chunker(text, count, limit))
    started = time.perf_counter()
    vectors = encoder.encode_documents([c for _, c in chunks], batch_size=32, show_progress=False)
    encode_s = time.perf_counter() - started
    normed = [_norm(c) for _, c in chunks]
    heading_only = [
        all(line.lstrip().startswith("#") for line in c.splitlines() if line.strip())
        for _, c in chunks
    ]
    q_vectors = encoder.encode_queries([q for _, _, q, _ in queries], show_progress=False)
    scores = maxsim(q_vectors, vectors)
    hits: dict[str, dict[int, list[bool]]] = {}
    lone_top1: list[bool] = []
    for row, (kind, package, _, needle) in zip(scores, queries, strict=True):
        order = np.argsort(-row, kind="stable")[:10]
        relevant = [chunks[i][0] == package and needle in normed[i] for i in order]
        for k in (1, 5, 10):
            hits.setdefault(kind, {}).setdefault(k, []).append(any(relevant[:k]))
        lone_top1.append(heading_only[order[0]])
    tokens = count([c for _, c in chunks])
    return {
        "chunks": len(chunks),
        "mean_tokens": float(np.mean(tokens)),
        "heading_only_chunks": int(sum(heading_only)),
        "top1_heading_only": float(np.mean(lone_top1)),
        "encode_s": encode_s,
        "hits": {kind: {k: float(np.mean(v)) for k, v in d.items()} for kind, d in hits.items()},
        "n_queries": {kind: len(d[1]) for kind, d in hits.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40, help="READMEs to use (sorted by name)")
    parser.add_argument("--model", help="ColBERT folder (default: the MiniLM stand-in, built once)")
    args = parser.parse_args()

    import os

    from sauerkraut_rag import load_encoder

    if args.model:
        model = Path(args.model)
    else:
        from examples.offline_model import build_minilm_colbert

        model = build_minilm_colbert(Path(tempfile.mkdtemp(prefix="chunk-bench-")) / "minilm")
    encoder = load_encoder(model, device="cpu", dtype="float32")
    limit = encoder.settings.document_length - encoder.tokenizer.num_special_tokens_to_add() - 1
    files = readmes(args.files)
    queries = [
        (kind, pkg, q, needle) for pkg, text in files for kind, q, needle in queries_of(pkg, text)
    ]
    size = sum(len(t.encode()) for _, t in files)
    print("packages: " + ", ".join(name for name, _ in files))
    print(
        f"corpus: {len(files)} package READMEs, {size / 1024:.0f} KB; model {model.name}, "
        f"chunk budget {limit} tokens; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    rows = {}
    for name, chunker in (
        ("before (paragraphs)", paragraph_chunks),
        ("after (packed)", chunk_text),
    ):
        rows[name] = evaluate(encoder, files, chunker, limit, queries)
    kinds = sorted(next(iter(rows.values()))["n_queries"].items())
    print("queries: " + ", ".join(f"{n} {kind}" for kind, n in kinds))
    print(
        "| chunker | chunks | mean tokens | heading-only chunks | top-1 heading-only | "
        + " | ".join(f"{kind} hit@{k}" for kind, _ in kinds for k in (1, 5, 10))
        + " |"
    )
    print("|---" * (5 + 3 * len(kinds)) + "|")
    for name, r in rows.items():
        cells = [f"{r['hits'][kind][k]:.3f}" for kind, _ in kinds for k in (1, 5, 10)]
        print(
            f"| {name} | {r['chunks']} | {r['mean_tokens']:.0f} | {r['heading_only_chunks']} | "
            f"{r['top1_heading_only']:.3f} | " + " | ".join(cells) + " |"
        )
    before, after = rows["before (paragraphs)"], rows["after (packed)"]
    print(
        f"chunks after/before: {after['chunks'] / before['chunks']:.2f}x; "
        f"encode time after/before: {after['encode_s'] / before['encode_s']:.2f}x (load-dependent)"
    )


if __name__ == "__main__":
    main()
