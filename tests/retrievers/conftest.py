"""Fixtures shared by the VoyagerIndex tests (a module's own ``queries`` overrides it)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.retrievers.helpers import unit_rows
from tests.retrievers.index_support import DIM


@pytest.fixture
def queries() -> list[np.ndarray]:
    """Three unit-row queries of 1, 3 and 7 tokens at the index tests' dimension."""
    rng = np.random.default_rng(99)
    return [unit_rows(rng, n, DIM) for n in (1, 3, 7)]
