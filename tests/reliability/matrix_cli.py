"""Bad-input matrix, command line: one stderr line and exit code 1, or documented output."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from sauerkraut_rag.cli import main
from sauerkraut_rag.cli.settings import IndexSettings
from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.matrix_case import Case, Ctx, behaves
from tests.reliability.matrix_index import _newer_version
from tests.reliability.support import damaged, first_segment, truncate_half

A = "cli"


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _folder(ctx: Ctx) -> Path:
    """The matrix index folder, with the command line's record of its (tiny) model."""
    folder = ctx.holder.folder
    if IndexSettings.read(folder) is None:
        model = str(ctx.get("colbert_dir").resolve())
        IndexSettings(model, "colbert", "text", ctx.index.dim, "tests").write(folder)
    return folder


def _cli(ctx: Ctx, *args: str) -> tuple[int, str, str]:
    """Run the command line with the index closed (as another process would find it)."""
    _folder(ctx)
    ctx.index.close()
    try:
        return _main(*args)
    finally:
        ctx.holder.index = VoyagerIndex.open(ctx.holder.folder)


def _one_error_line(result: tuple[int, str, str], *words: str) -> None:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 1, result
    assert len(lines) == 1 and lines[0].startswith("sauerkraut-rag: error: "), err
    assert "Traceback" not in err
    missing = [w for w in words if w.lower() not in err.lower()]
    assert not missing, f"CLI error lacks {missing}: {err!r}"


def _error_case(name: str, args: tuple[str, ...], *words: str) -> Case:
    """A case running ``sauerkraut-rag <args>`` (``{dir}`` = the index folder)."""

    def run(ctx: Ctx) -> None:
        folder = str(ctx.holder.folder)
        argv = [a.replace("{dir}", folder).replace("{tmp}", str(ctx.tmp)) for a in args]
        _one_error_line(_cli(ctx, *argv), *words)

    return Case(A, name, run)


@behaves(A, "search-unknown-filter-key")
def _unknown_filter(ctx: Ctx) -> None:
    """Documented: a filter key no document has is named in one error line (issue 15: an
    empty result read as "nothing relevant"), together with the keys the index has."""
    result = _cli(ctx, "search", str(ctx.holder.folder), "Paris", "--filter", "nokey=1")
    _one_error_line(result, "'nokey'", "keys in this index")


@behaves(A, "index-unreadable-text-files")
def _unreadable(ctx: Ctx) -> None:
    """Documented: files that cannot be read are reported (one line each) and skipped."""
    (ctx.tmp / "in").mkdir()
    (ctx.tmp / "in" / "empty.txt").write_text("")
    (ctx.tmp / "in" / "binary.md").write_bytes(b"\xff\xfe\x00garbage\x80")
    code, out, err = _cli(ctx, "index", str(ctx.tmp / "in"), "--index", str(ctx.holder.folder))
    assert code == 0, err
    assert "0 new file(s)" in out and "2 failed" in out, out
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2, err
    assert any("no text" in line for line in skipped) and any("UTF-8" in line for line in skipped)


@behaves(A, "index-link-out-of-folder")
def _link_out(ctx: Ctx) -> None:
    """Documented: a link inside a given folder that leads out of it is skipped and
    reported (``--follow-symlinks`` follows it); its target never reaches the index."""
    (ctx.tmp / "in").mkdir()
    secret = ctx.tmp / "secret.txt"
    secret.write_text("root:x:0:0 geheime Zeile")
    (ctx.tmp / "in" / "empty.txt").write_text("")
    (ctx.tmp / "in" / "notes.txt").symlink_to(secret)
    code, out, err = _cli(ctx, "index", str(ctx.tmp / "in"), "--index", str(ctx.holder.folder))
    assert code == 0, err
    assert "0 new file(s)" in out, out
    assert any("notes.txt" in line and "--follow-symlinks" in line for line in err.splitlines())
    texts = [doc.payload or "" for doc in ctx.index.get(ctx.index.list_ids(10_000).ids)]
    assert not any("geheime" in text for text in texts)


@behaves(A, "index-with-another-model")
def _other_model(ctx: Ctx) -> None:
    (ctx.tmp / "note.txt").write_text("Die Zugspitze ist hoch.")
    result = _cli(ctx, "index", str(ctx.tmp), "--index", str(ctx.holder.folder), "--model", ".")
    _one_error_line(result, "was built with", "leave out --model")


@behaves(A, "search-newer-format-version")
def _newer(ctx: Ctx) -> None:
    _folder(ctx)
    with damaged(ctx.holder, lambda f: f / "index.sqlite", _newer_version) as folder:
        result = _main("search", str(folder), "Paris")
    _one_error_line(result, "newer", "upgrade sauerkraut-rag")


@behaves(A, "info-truncated-vector-file")
def _truncated(ctx: Ctx) -> None:
    _folder(ctx)
    with damaged(ctx.holder, first_segment, truncate_half) as folder:
        result = _main("info", str(folder))
    _one_error_line(result, "truncated", "backup")


CASES = [
    _error_case("search-empty-query", ("search", "{dir}", ""), "non-empty query", "example"),
    _error_case("search-k-zero", ("search", "{dir}", "Paris", "-k", "0"), "-k", "at least 1"),
    _error_case(
        "search-bad-filter", ("search", "{dir}", "Paris", "--filter", "page"), "key=value", "page=2"
    ),
    _error_case(
        "search-missing-index",
        ("search", "{tmp}/nowhere", "Paris"),
        "no index at",
        "sauerkraut-rag index",
    ),
    _error_case(
        "explain-unknown-page",
        ("explain", "{dir}", "Paris", "--page", "../../etc/passwd", "--out", "{tmp}/m.png"),
        "no page with id",
        "search",
    ),
    _unknown_filter,
    _unreadable,
    _link_out,
    _other_model,
    _newer,
    _truncated,
]
