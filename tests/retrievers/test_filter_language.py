"""The filter language: parsing, errors and the Python evaluator against the shared matrix.

Every case of ``tests/filter_cases.py`` is checked three ways here: the hand-written
expected ids, an independent reference evaluator (``filter_reference.py``) and the
package's ``matches``. The SQL evaluation is checked in ``test_filter_sql.py``.
"""

from __future__ import annotations

import pytest

from sauerkraut_rag.errors import FilterError, InvalidInputError
from sauerkraut_rag.retrievers.filters import (
    KEY_OPERATORS,
    LOGIC_OPERATORS,
    And,
    Comparison,
    Not,
    Op,
    Or,
    escape_like,
    matches,
    parse_filter,
    to_dict,
)
from tests.filter_cases import BAD_CASES, CASES, DOCUMENTS
from tests.retrievers.filter_reference import reference_match


def test_matrix_is_large_and_covers_every_operator():
    assert len(CASES) >= 40 and len(BAD_CASES) >= 10
    text = repr([case.filter for case in CASES])
    for op in (*KEY_OPERATORS, *LOGIC_OPERATORS):
        assert f"'{op}'" in text, f"no matrix case uses {op}"
    for case in CASES:  # every case separates documents (or proves "nothing"/"all")
        assert case.expected <= set(DOCUMENTS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_evaluator_agrees_with_expected_ids(case):
    found = {i for i, meta in DOCUMENTS.items() if reference_match(case.filter, meta)}
    assert found == case.expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_agrees_with_expected_ids(case):
    tree = parse_filter(case.filter)
    assert {i for i, meta in DOCUMENTS.items() if matches(tree, meta)} == case.expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_to_dict_round_trips(case):
    tree = parse_filter(case.filter)
    again = parse_filter(to_dict(tree))
    assert repr(again) == repr(tree)  # repr: Python's 1 == True would hide a type change
    assert {i for i, m in DOCUMENTS.items() if reference_match(to_dict(tree), m)} == case.expected


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_filters_raise_typed_errors(case):
    with pytest.raises(case.error) as info:
        parse_filter(case.filter)
    assert isinstance(info.value, FilterError) and isinstance(info.value, InvalidInputError)
    assert case.message in str(info.value)


@pytest.mark.parametrize(
    "bad", [{"a": {"$regex": "x"}}, {"$nor": [{"a": 1}]}, {"a": {"$bogus": 1}}]
)
def test_unknown_operator_error_lists_supported_operators(bad):
    with pytest.raises(FilterError) as info:
        parse_filter(bad)
    message = str(info.value)
    for op in (*KEY_OPERATORS, *LOGIC_OPERATORS):
        assert op in message


def test_the_issue_filters_are_operators_not_dict_equality():
    source_in = parse_filter({"source": {"$in": ["a.txt", "b.txt"]}})
    assert source_in == Comparison(("source",), Op.IN, ("a.txt", "b.txt"))
    either = parse_filter({"$or": [{"lang": "de"}, {"lang": "en"}]})
    assert isinstance(either, Or) and len(either.children) == 2
    after = parse_filter({"start_index": {"$gt": 1000}})
    assert after == Comparison(("start_index",), Op.GT, 1000)


def test_sugar_normalises_to_four_node_types():
    assert parse_filter({"a": {"$ne": 1}}) == Not(Comparison(("a",), Op.EQ, 1))
    assert parse_filter({"a": {"$nin": [1]}}) == Not(Comparison(("a",), Op.IN, (1,)))
    assert parse_filter({"a": {"$exists": False}}) == Not(Comparison(("a",), Op.EXISTS))
    assert parse_filter({"a": {"$between": [1, 2]}}) == And(
        (Comparison(("a",), Op.GTE, 1), Comparison(("a",), Op.LTE, 2))
    )
    nested = parse_filter({"$and": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}]})
    assert isinstance(nested, And) and len(nested.children) == 3  # flattened
    assert parse_filter({"x.y": 1}) == Comparison(("x", "y"), Op.EQ, 1)


def test_no_filter_and_parsed_trees():
    assert parse_filter(None) is None
    assert parse_filter({}) is None
    tree = parse_filter({"a": 1, "b": {"$gt": 2}})
    assert parse_filter(tree) == tree
    with pytest.raises(FilterError, match=r"\$in"):
        parse_filter(Comparison(("a",), Op.IN, "not-a-tuple"))  # hand-built trees are checked
    with pytest.raises(ValueError, match="non-empty"):
        And(())


def test_callable_is_not_part_of_the_language():
    with pytest.raises(FilterError, match="VoyagerIndex only"):
        parse_filter(lambda meta: True)


def test_numpy_scalars_are_accepted():
    np = pytest.importorskip("numpy")
    assert parse_filter({"page": np.int64(3)}) == Comparison(("page",), Op.EQ, 3)
    assert type(parse_filter({"page": np.int64(3)}).value) is int


def test_escape_like_matches_itself_only():
    text = "50%_off\\now"
    tree = parse_filter({"t": {"$like": escape_like(text)}})
    assert matches(tree, {"t": text})
    assert not matches(tree, {"t": "50%Xoff\\now"})
    assert not matches(tree, {"t": "50% off\\now"})


def test_doctests():
    import doctest

    from sauerkraut_rag.retrievers.filters import parse

    assert doctest.testmod(parse).failed == 0
