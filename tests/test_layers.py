"""The package's layers, and that imports run one way: documents -> encoders -> retrievers ->
integrations -> cli (shared base modules such as ``types`` and ``errors`` below them all).

Every ``import`` statement of every module is read with ``ast`` (function-level and
``TYPE_CHECKING`` imports included), so a lazy import cannot hide a wrong direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sauerkraut_rag

PACKAGE = Path(sauerkraut_rag.__file__).resolve().parent

LAYERS = ("base", "documents", "encoders", "retrievers", "integrations", "cli")
"""Bottom to top: a module may import its own layer and the layers before it."""

FOLDER_LAYERS = {"documents", "encoders", "retrievers", "integrations", "cli"}
ROOT_MODULE_LAYERS = {
    "pages": "documents",  # compatibility re-export of documents.pages
    "similarity_maps": "encoders",  # explains an encoder's match: documents + encoders only
}
"""Root modules that belong to a layer; every other root module is a shared base module."""

FRAMEWORKS = ("langchain", "llamaindex")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package facade: version and the lazily imported public API
    if parts[1] in FOLDER_LAYERS:
        return parts[1]
    return ROOT_MODULE_LAYERS.get(parts[1], "base")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a ``sauerkraut_rag`` module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                found.append((node.lineno, _resolve(target, alias.name)))
    return [(line, name) for line, name in found if name.split(".")[0] == "sauerkraut_rag"]


def _resolve(target: str, name: str) -> str:
    """``from target import name``: the module ``name`` is, or the one it comes from."""
    if target == "sauerkraut_rag":
        lazy = getattr(sauerkraut_rag, "_LAZY", {})
        if name in lazy:
            return lazy[name]
    candidate = f"{target}.{name}"
    relative = Path(*candidate.split(".")[1:])
    if (PACKAGE / relative).is_dir() or (PACKAGE / relative).with_suffix(".py").is_file():
        return candidate
    return target


def violations(module: str, imports: list[tuple[int, str]]) -> list[str]:
    """The imports of ``module`` that break the layer rules."""
    bad: list[str] = []
    # The package facade re-exports the encoders' public API (lazily); as an import
    # target it is the base (version), or the encoder module a lazy name comes from.
    layer = LAYERS.index("encoders" if module == "sauerkraut_rag" else layer_of(module))
    for line, target in imports:
        target_layer = layer_of(target)
        if LAYERS.index(target_layer) > layer:
            bad.append(f"{module}:{line} imports {target} ({layer_of(module)} -> {target_layer})")
        mine = _framework(module)
        theirs = _framework(target)
        if mine and theirs and mine != theirs:
            bad.append(f"{module}:{line} imports {target} (one framework adapter -> the other)")
    return bad


def _framework(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "integrations" and parts[2] in FRAMEWORKS:
        return parts[2]
    return None


def test_the_five_layers_are_folders() -> None:
    for folder in FOLDER_LAYERS:
        init = PACKAGE / folder / "__init__.py"
        assert init.is_file(), f"{folder}/ is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and doc.startswith(f"{folder}:"), f"{folder}/__init__.py needs its docstring"
        assert "import" in doc.lower(), f"{folder}/__init__.py must say what it may import"
    assert (PACKAGE / "retrievers" / "voyager" / "__init__.py").is_file()


def test_imports_run_one_way() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    problems = [
        problem
        for path in modules
        for problem in violations(module_name(path), imported_modules(path))
    ]
    assert problems == []


def test_nothing_outside_cli_imports_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if layer_of(module) == "cli":
            continue
        for line, target in imported_modules(path):
            assert layer_of(target) != "cli", f"{module}:{line} imports {target}"


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [
        ("sauerkraut_rag.retrievers.retriever", "sauerkraut_rag.integrations._common", False),
        ("sauerkraut_rag.documents.pages", "sauerkraut_rag.encoders.loading", False),
        ("sauerkraut_rag.encoders.colbert", "sauerkraut_rag.retrievers.maxsim", False),
        ("sauerkraut_rag.integrations.langchain.vectorstore", "sauerkraut_rag.cli.main", False),
        (
            "sauerkraut_rag.integrations.langchain.reranker",
            "sauerkraut_rag.integrations.llamaindex._nodes",
            False,
        ),
        ("sauerkraut_rag.similarity_maps", "sauerkraut_rag.retrievers.maxsim", False),
        ("sauerkraut_rag.cli.search", "sauerkraut_rag.retrievers.voyager.index", True),
        ("sauerkraut_rag.retrievers.voyager.sql", "sauerkraut_rag._checks", True),
        ("sauerkraut_rag.encoders._visual", "sauerkraut_rag.documents.images", True),
        ("sauerkraut_rag.integrations.langchain.vectorstore", "sauerkraut_rag.retrievers", True),
    ],
)
def test_the_rule_itself(module: str, target: str, allowed: bool) -> None:
    assert (violations(module, [(1, target)]) == []) is allowed


def test_lazy_public_names_resolve_to_their_layer(tmp_path: Path) -> None:
    """``from sauerkraut_rag import load_encoder`` counts as an import of encoders."""
    assert _resolve("sauerkraut_rag", "load_encoder") == "sauerkraut_rag.encoders.loading"
    assert _resolve("sauerkraut_rag", "__version__") == "sauerkraut_rag"
    assert _resolve("sauerkraut_rag.retrievers", "voyager") == "sauerkraut_rag.retrievers.voyager"
