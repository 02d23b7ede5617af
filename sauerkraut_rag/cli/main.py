"""The ``sauerkraut-rag`` command: index files, search them, explain a match, describe an index.

::

    sauerkraut-rag index PATH... --index DIR [--model ID|PATH] [--pool-factor N] [--dpi N]
                         [--keep-missing] [--dtype NAME]
    sauerkraut-rag remove PATH... --index DIR
    sauerkraut-rag search DIR ["query"] [-k N] [--filter key=value ...] [--where JSON]
                          [--json] [--dtype NAME]
    sauerkraut-rag explain DIR "query" --page ID --out map.png [--reduce max|sum]
                           [--dtype NAME]
    sauerkraut-rag info DIR [--json]
    sauerkraut-rag copy DIR --qdrant URL_OR_PATH --collection NAME [--pages-dir DIR]

Every command also works on a Qdrant collection: ``--qdrant URL_OR_PATH --collection
NAME`` in place of the index folder (an ``http(s)://`` URL is a server or cluster, with
the API key from ``QDRANT_API_KEY``; anything else a local-mode folder), and
``--pages-dir DIR`` for page images (see :mod:`sauerkraut_rag.cli.targets`).

``--dtype`` (float32, bfloat16, float16) is the precision the model runs in; it is not
recorded in the index, whose vectors stay comparable across precisions.

Errors (a model that cannot be fetched, a missing index, bad input) end the command with
one line on stderr and exit code 1, never a traceback; ``--verbose`` turns on logging (and
shows tracebacks of unexpected errors).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sauerkraut_rag.errors import InvalidInputError, ModelNotFoundError, SauerkrautError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

_OFFLINE_HINT = (
    "Check the id and your connection, or download the model folder once "
    "(hf download ID --local-dir PATH, the command huggingface_hub installs) and pass "
    "--model PATH."
)
_CORE_HINT = (
    "Check the id and your connection, or download the model folder elsewhere and pass its "
    "local path instead."
)
"""The library's own advice, replaced by the command line's (which names --model)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sauerkraut-rag`` (sub-commands index, search, explain, info)."""
    from sauerkraut_rag import __version__
    from sauerkraut_rag.cli.index import DEFAULT_PAGE_MODEL, DEFAULT_TEXT_MODEL

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress"
    )
    model_options = argparse.ArgumentParser(add_help=False)
    model_options.add_argument(
        "--dtype",
        metavar="NAME",
        help="precision the model runs in: float32 (default on CPU, exact), bfloat16 (several "
        "times faster page encoding on CPUs with AVX512_BF16 or AMX, vectors within a cosine "
        "of ~0.9999 of float32; a bfloat16 query may search a float32 index), float16 (GPUs)",
    )
    parser = argparse.ArgumentParser(
        prog="sauerkraut-rag",
        description="Late-interaction retrieval over PDFs, scans and text (SauerkrautLM models).",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        parents=[common, model_options],
        help="encode PDFs, images or text files into an index folder",
        description=(
            "Encode PDFs, images, .txt/.md files or folders into DIR. Re-running skips files "
            "already indexed (by content hash); unreadable files are reported and skipped."
        ),
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="PDFs, images, text files, folders")
    index.add_argument("--index", type=Path, metavar="DIR", help="index folder")
    _add_qdrant(index)
    index.add_argument(
        "--model",
        metavar="ID|PATH",
        help=f"hub id or local folder (default: {DEFAULT_PAGE_MODEL} for pages, "
        f"{DEFAULT_TEXT_MODEL} for .txt/.md; an existing index keeps its model)",
    )
    index.add_argument(
        "--pool-factor",
        type=int,
        metavar="N",
        help="merge similar token vectors to about 1/N of them when creating the index",
    )
    index.add_argument("--dpi", type=int, default=144, metavar="N", help="PDF render DPI (144)")
    index.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also index files that links inside the given folders point to elsewhere "
        "(by default such links are skipped and reported)",
    )
    index.add_argument(
        "--keep-missing",
        action="store_true",
        help="keep documents of files that are gone from the given folders (by default "
        "they are removed, so the index mirrors its folders)",
    )

    remove = commands.add_parser(
        "remove",
        parents=[common],
        help="remove files (or every file under a folder) from an index",
        description="Delete the documents and page images of indexed files. PATH may be a "
        "file or a folder, and need not exist any more.",
    )
    remove.add_argument("paths", nargs="+", metavar="PATH", help="indexed files or folders")
    remove.add_argument("--index", type=Path, metavar="DIR", help="index folder")
    _add_qdrant(remove)

    search = commands.add_parser("search", parents=[common, model_options], help="search an index")
    search.add_argument("dir", nargs="?", metavar="DIR", help="index folder (or --qdrant)")
    search.add_argument(
        "query",
        nargs="?",
        help="the question; leave it out to read queries from stdin, one per line "
        "(the model is loaded once)",
    )
    search.add_argument("-k", type=int, default=5, metavar="N", help="results to show (5)")
    search.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep documents whose metadata KEY equals VALUE (repeatable), e.g. page=2",
    )
    search.add_argument(
        "--where",
        metavar="JSON",
        help="keep documents matching a JSON filter, e.g. "
        '\'{"source": {"$in": ["a.txt", "b.txt"]}}\' or \'{"year": {"$gte": 2020}}\' '
        "(operators: $eq $ne $gt $gte $lt $lte $between $in $nin $exists $like $ilike, "
        "logic: $and $or $not)",
    )
    search.add_argument("--json", action="store_true", help="print JSON for scripts")
    search.add_argument("--model", metavar="ID|PATH", help="override the index's model")
    _add_qdrant(search)

    explain = commands.add_parser(
        "explain",
        parents=[common, model_options],
        help="draw a similarity map of a query over a page",
    )
    explain.add_argument("dir", nargs="?", metavar="DIR", help="index folder (or --qdrant)")
    explain.add_argument("query")
    explain.add_argument("--page", required=True, metavar="ID", help="page id from `search`")
    explain.add_argument("--out", required=True, type=Path, metavar="MAP.png")
    explain.add_argument(
        "--reduce",
        choices=("max", "sum"),
        default="max",
        help="per patch: best-matching query token (max, default) or sum over query tokens",
    )
    explain.add_argument("--model", metavar="ID|PATH", help="override the index's model")
    _add_qdrant(explain)

    info = commands.add_parser("info", parents=[common], help="describe an index")
    info.add_argument("dir", nargs="?", metavar="DIR", help="index folder (or --qdrant)")
    info.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_qdrant(info)

    copy = commands.add_parser(
        "copy",
        parents=[common],
        help="copy an index folder into a Qdrant collection (no re-encoding)",
        description="Copy every document of the index folder DIR (vectors, metadata, text), "
        "its model record and its list of files into a Qdrant collection. Resumable: "
        "documents already in the collection are skipped.",
    )
    copy.add_argument("source", type=Path, metavar="DIR", help="the index folder to copy")
    copy.add_argument("--batch-size", type=int, default=256, metavar="N", help="documents per step")
    _add_qdrant(copy)
    return parser


def _require_index(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) when a command names no index folder and no --qdrant."""
    named = getattr(args, "index", None) or getattr(args, "dir", None)
    if args.command != "copy" and named is None and getattr(args, "qdrant", None) is None:
        where = "--index DIR" if args.command in ("index", "remove") else "DIR"
        parser.error(
            f"{args.command}: name the index: {where}, or --qdrant URL_OR_PATH --collection NAME"
        )


def _add_qdrant(command: argparse.ArgumentParser) -> None:
    """``--qdrant``, ``--collection`` and ``--pages-dir`` (a Qdrant collection as the index)."""
    group = command.add_argument_group("Qdrant (in place of an index folder)")
    group.add_argument(
        "--qdrant",
        metavar="URL_OR_PATH",
        help="a Qdrant server or cluster (http(s)://..., API key from QDRANT_API_KEY) or a "
        "local-mode folder",
    )
    group.add_argument("--collection", metavar="NAME", help="the Qdrant collection")
    group.add_argument(
        "--pages-dir",
        type=Path,
        metavar="DIR",
        help="where page images go: a folder every reader can reach (remembered)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _require_index(parser, args)
    verbose = bool(getattr(args, "verbose", False))
    _configure_logging(verbose)
    try:
        _dispatch(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except ModelNotFoundError as exc:
        _error(f"{str(exc).replace(_CORE_HINT, '').rstrip()} {_OFFLINE_HINT}")
        return EXIT_ERROR
    except (SauerkrautError, OSError) as exc:
        _error(str(exc) or type(exc).__name__)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line, the traceback only with --verbose
        if verbose:
            traceback.print_exc()
        _error(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for details)")
        return EXIT_ERROR
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> None:
    from sauerkraut_rag.cli.targets import target_from_args

    out = sys.stdout
    if args.command == "copy":
        _copy(args, out)
        return
    if args.command == "search" and args.qdrant is not None and args.query is None:
        args.query, args.dir = args.dir, None  # `search "query" --qdrant ...`: no DIR
    target = target_from_args(args)
    try:
        _run(args, target, out)
    finally:
        target.close()


def _copy(args: argparse.Namespace, out: TextIO) -> None:
    from sauerkraut_rag.cli.copy import run_copy
    from sauerkraut_rag.cli.targets import FolderTarget, QdrantTarget

    if args.qdrant is None or not args.collection:
        raise InvalidInputError("copy needs a target: --qdrant URL_OR_PATH --collection NAME.")
    source = FolderTarget(args.source)
    target = QdrantTarget(args.qdrant, args.collection, args.pages_dir or source.pages_dir)
    try:
        run_copy(source, target, batch_size=args.batch_size, pages_dir=args.pages_dir, out=out)
    finally:
        target.close()


def _run(args: argparse.Namespace, target: Any, out: TextIO) -> None:
    dtype = getattr(args, "dtype", None)
    if dtype is not None:  # checked before any model (or torch) is loaded
        from sauerkraut_rag.encoders._dtype_names import canonical_dtype_name

        dtype = canonical_dtype_name(dtype, what="--dtype")
    if args.command == "index":
        from sauerkraut_rag.cli.index import run_index

        report = run_index(
            args.paths,
            target,
            model=args.model,
            pool_factor=args.pool_factor,
            dpi=args.dpi,
            err=sys.stderr,
            sync=not args.keep_missing,
            follow_symlinks=args.follow_symlinks,
            dtype=dtype,
        )
        out.write(report.summary(target.label) + "\n")
    elif args.command == "remove":
        from sauerkraut_rag.cli.remove import run_remove

        files, documents = run_remove(args.paths, target)
        out.write(f"Removed {files} file(s) ({documents} documents) from {target.label}.\n")
    elif args.command == "search":
        from sauerkraut_rag.cli.search import run_search

        run_search(
            target,
            args.query,
            k=args.k,
            filters=args.filter,
            where=args.where,
            as_json=args.json,
            model=args.model,
            out=out,
            queries=sys.stdin if args.query is None else None,
            dtype=dtype,
        )
    elif args.command == "explain":
        from sauerkraut_rag.cli.explain import run_explain

        run_explain(
            target,
            args.query,
            page=args.page,
            out_path=args.out,
            reduce=args.reduce,
            model=args.model,
            out=out,
            dtype=dtype,
        )
    else:
        from sauerkraut_rag.cli.info import run_info

        run_info(target, as_json=args.json, out=out)


def _configure_logging(verbose: bool) -> None:
    if not verbose:  # read by transformers at import: keep its warnings off the terminal
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "warning: %(message)s",
        stream=sys.stderr,
    )


def _error(message: str) -> None:
    """One line on stderr: ``sauerkraut-rag: error: ...``."""
    sys.stderr.write(f"sauerkraut-rag: error: {' '.join(message.split())}\n")
