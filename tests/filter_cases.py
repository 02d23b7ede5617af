"""The shared filter test matrix now ships with the conformance suite (third-party backends
run it too): :mod:`sauerkraut_rag.retrievers.conformance.filter_cases`."""

from __future__ import annotations

from sauerkraut_rag.retrievers.conformance.filter_cases import (
    ALL,
    BAD_CASES,
    CASES,
    DOCUMENTS,
    BadFilterCase,
    FilterCase,
)

__all__ = ["ALL", "BAD_CASES", "CASES", "DOCUMENTS", "BadFilterCase", "FilterCase"]
