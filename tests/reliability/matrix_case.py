"""The shape of one bad-input matrix case and the context every case runs in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability.support import IndexHolder

AREAS = ("encoders", "pages", "index", "adapters", "cli")


@dataclass
class Ctx:
    """What a case may use: the populated index (via ``holder``), a scratch folder and
    lazily built session fixtures (``ctx.get("page_encoder")``)."""

    holder: IndexHolder
    tmp: Path
    request: pytest.FixtureRequest

    @property
    def index(self) -> VoyagerIndex:
        return self.holder.index

    def get(self, fixture: str) -> Any:
        return self.request.getfixturevalue(fixture)


@dataclass(frozen=True)
class Case:
    """One bad input and what must happen.

    With ``error`` set, ``run`` must raise exactly that class with a message containing
    every one of ``words`` (the problem and the fix). Without, ``run`` checks the
    documented behaviour itself. Either way the index must afterwards hold what it held
    before, plus exactly the ids in ``adds`` (documented writes).
    """

    area: str
    name: str
    run: Callable[[Ctx], object]
    error: type[BaseException] | None = None
    words: tuple[str, ...] = ()
    adds: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.area}:{self.name}"


def fails(
    area: str, name: str, error: type[BaseException], *words: str
) -> Callable[[Callable[[Ctx], object]], Case]:
    """Decorator: the function is a case that must raise ``error`` naming ``words``."""

    def wrap(run: Callable[[Ctx], object]) -> Case:
        return Case(area, name, run, error, tuple(words))

    return wrap


def behaves(
    area: str, name: str, *, adds: tuple[str, ...] = ()
) -> Callable[[Callable[[Ctx], object]], Case]:
    """Decorator: the function is a case that checks documented behaviour itself."""

    def wrap(run: Callable[[Ctx], object]) -> Case:
        return Case(area, name, run, None, (), adds)

    return wrap
