"""A static scan of Python sources for code that could run untrusted input.

Two passes per file:

* a grep over the *code* only (string literals and comments blanked out with
  ``tokenize``), so docstrings and error messages may mention pickle without an
  allow-list, while any use of the word in code is a hit;
* an AST pass for calls and arguments that a grep cannot judge: ``torch.load`` without
  ``weights_only=True``, ``eval``/``exec`` (also inside f-strings),
  ``allow_pickle=True``, ``shell=True``, ``trust_remote_code=True`` as a default or a
  literal argument, ``os.system``/``os.popen``, ``yaml.load`` and pickle-based imports.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path

PICKLE_MODULES = frozenset(
    {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
)
CODE_PATTERNS = {
    "pickle-like module": re.compile(
        r"\b(c?[Pp]ickle|_pickle|dill|cloudpickle|shelve|marshal|joblib)\b"
    ),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "shell=True": re.compile(r"\bshell\s*=\s*True"),
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*(:\s*bool\s*)?=\s*True"),
}


def code_only(source: str) -> str:
    """``source`` with every string literal and comment replaced by spaces."""
    lines = source.splitlines(keepends=True)
    out = [list(line) for line in lines]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.STRING, tokenize.COMMENT):
            continue
        (row, col), (end_row, end_col) = token.start, token.end
        for r in range(row, end_row + 1):
            line = out[r - 1]
            lo = col if r == row else 0
            hi = end_col if r == end_row else len(line)
            for c in range(lo, hi):
                if line[c] != "\n":
                    line[c] = " "
    return "".join("".join(line) for line in out)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _ast_hits(tree: ast.AST) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            roots = {n.split(".")[0] for n in names} | {module.split(".")[0]}
            if roots & PICKLE_MODULES:
                hits.append((node.lineno, f"imports {sorted(roots & PICKLE_MODULES)}"))
            if module == "torch" and "load" in names:
                hits.append((node.lineno, "imports torch.load by name"))
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
                hits.append((node.lineno, f"calls {name}"))
            if name == "torch.load" and not _is_true(keywords.get("weights_only")):
                hits.append((node.lineno, "torch.load without weights_only=True"))
            if name in ("os.system", "os.popen", "yaml.load", "yaml.unsafe_load"):
                hits.append((node.lineno, f"calls {name}"))
            for key in ("allow_pickle", "shell", "trust_remote_code"):
                if _is_true(keywords.get(key)):
                    hits.append((node.lineno, f"passes {key}=True"))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            positional = args.posonlyargs + args.args
            with_defaults = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(with_defaults, args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
            for arg, default in pairs:
                if arg.arg == "trust_remote_code" and not (
                    isinstance(default, ast.Constant) and default.value is False
                ):
                    hits.append(
                        (node.lineno, "trust_remote_code defaults to something else than False")
                    )
        is_field = isinstance(node, ast.AnnAssign) and _dotted(node.target) == "trust_remote_code"
        if is_field and _is_true(node.value):  # type: ignore[union-attr]
            hits.append((node.lineno, "field trust_remote_code defaults to True"))
    return hits


def scan_source(source: str) -> list[str]:
    """Hits in one Python source, as ``"line N: what"``."""
    hits = [
        f"line {source.count(chr(10), 0, m.start()) + 1}: {label}"
        for label, pattern in CODE_PATTERNS.items()
        for m in pattern.finditer(code_only(source))
    ]
    hits += [f"line {line}: {what}" for line, what in _ast_hits(ast.parse(source))]
    return sorted(set(hits))


def notebook_code(path: Path) -> str:
    """The code cells of a Jupyter notebook, without IPython magics (``%``, ``!``)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = "".join(cell.get("source", []))
            lines += [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def scan_tree(root: Path, folders: tuple[str, ...]) -> dict[str, list[str]]:
    """Hits per file (relative path) in the ``.py`` and ``.ipynb`` files of ``folders``."""
    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix == ".py":
                hits = scan_source(path.read_text(encoding="utf-8"))
            elif path.suffix == ".ipynb" and ".ipynb_checkpoints" not in path.parts:
                hits = scan_source(notebook_code(path))
            else:
                continue
            if hits:
                found[str(path.relative_to(root))] = hits
    return found
