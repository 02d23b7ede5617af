"""The bad-input matrix: every case fails with a typed, helpful error or behaves as
documented, and leaves the index exactly as it was (checked in memory and after reopening).

The cases live in ``matrix_<area>.py``; this file runs them all against a fresh
eight-document index built from a tiny ColBERT checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sauerkraut_rag.retrievers.voyager.index import VoyagerIndex
from tests.reliability import (
    matrix_adapters,
    matrix_cli,
    matrix_encoders,
    matrix_index,
    matrix_pages,
)
from tests.reliability.matrix_case import AREAS, Case, Ctx
from tests.reliability.support import IndexHolder, assert_helpful, assert_same_except, snapshot

CASES: list[Case] = [
    *matrix_encoders.CASES,
    *matrix_pages.CASES,
    *matrix_index.CASES,
    *matrix_adapters.CASES,
    *matrix_cli.CASES,
]


def test_matrix_covers_every_area() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40
    assert {case.area for case in CASES} == set(AREAS)
    assert all(case.words for case in CASES if case.error is not None)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(
    case: Case, holder: IndexHolder, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ctx = Ctx(holder, tmp_path / "scratch", request)
    ctx.tmp.mkdir()
    before = snapshot(holder.index)
    if case.error is None:
        case.run(ctx)
    else:
        with pytest.raises(case.error) as caught:
            case.run(ctx)
        assert caught.type is case.error, f"expected exactly {case.error.__name__}"
        assert_helpful(caught.value, case.words)
    after = snapshot(holder.index)
    assert_same_except(before, after, case.adds)
    holder.index.close()
    holder.index = VoyagerIndex.open(holder.folder)  # the same, as persisted on disk
    assert snapshot(holder.index) == after
