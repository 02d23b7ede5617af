"""The shared filter test matrix: documents, filters and the ids each filter must match.

Pure data (no pytest, no sauerkraut imports beyond error classes), so every backend's
conformance tests can run the same cases: store :data:`DOCUMENTS` (id -> metadata), run
each :class:`FilterCase` and compare with ``expected``; each :class:`BadFilterCase` must
raise ``error`` with ``message`` in its text. The expected ids were written by hand from
the semantics in :mod:`sauerkraut_rag.retrievers.filters` (and are cross-checked against
an independent reference evaluator in ``tests/retrievers/test_filter_language.py``).

``tags`` on a case name what it exercises; ``"int-precision"`` marks the cases that need
exact comparison of integers above 2**53 with floats (a backend storing numbers as
float64 may skip them, saying so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sauerkraut_rag.errors import FilterError, FilterTypeError

DOCUMENTS: dict[str, dict[str, Any]] = {
    "a": {
        "source": "a.txt",
        "page": 1,
        "year": 2019,
        "lang": "de",
        "tags": ["news", "sport"],
        "rating": 4.5,
        "draft": False,
    },
    "b": {
        "source": "b.txt",
        "page": 2,
        "year": 2021,
        "lang": "en",
        "tags": ["news"],
        "rating": 3,
        "draft": True,
    },
    "c": {"source": "c.txt", "page": 3, "year": 2021.0, "lang": "de", "tags": [], "rating": None},
    "d": {"source": "a.txt", "page": 10, "year": "2021", "lang": "fr", "start_index": 1500},
    "e": {
        "source": "e.pdf",
        "year": True,
        "lang": None,
        "start_index": 0,
        "tags": [1, "1", True, None],
    },
    "f": {"title": "Jahresbericht 2023", "author": {"name": "Ada", "age": 36}, "start_index": 1000},
    "g": {"title": "jahresbericht 2022", "author": {"name": "Grace"}, "start_index": 1000.5},
    "h": {"title": "100% sicher", "author": "Ada", "code": "snake_case"},
    "i": {"title": "Straße", "straße": "Müller", "日本": "東京", "emoji": "🚀 launch"},
    "j": {"title": "ÄRGER", "code": "snakeXcase", 'say "hi"': "yes", "rating": -0.0},
    "k": {},
    "l": {"source": "b.txt", "lang": "en", "author": {"name": None}, "nested": {"deep": {"x": 1}}},
    "m": {"big": 9007199254740993, "tags": "news", "flag": 1, "a.b": "literal dot"},
    "n": {
        "big": 9007199254740992.0,
        "tags": ["a", ["news"], {"x": 1}],
        "flag": 1.0,
        "lang": "EN",
        "a": {"b": "nested"},
    },
}

ALL = frozenset(DOCUMENTS)


@dataclass(frozen=True)
class FilterCase:
    """``filter`` must match exactly the documents ``expected``."""

    name: str
    filter: dict[str, Any]
    expected: frozenset[str]
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BadFilterCase:
    """``filter`` must raise ``error`` whose message contains ``message``."""

    name: str
    filter: Any
    error: type[Exception]
    message: str


def _ids(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _all_but(text: str) -> frozenset[str]:
    return ALL - _ids(text)


CASES: tuple[FilterCase, ...] = (
    # --- equality and JSON types
    FilterCase("eq-string", {"lang": "de"}, _ids("a c"), ("eq",)),
    FilterCase("eq-string-case-sensitive", {"lang": "en"}, _ids("b l"), ("eq",)),
    FilterCase("eq-explicit", {"lang": {"$eq": "de"}}, _ids("a c"), ("eq",)),
    FilterCase("eq-int-matches-float", {"year": 2021}, _ids("b c"), ("eq", "types")),
    FilterCase("eq-float-matches-int", {"year": 2021.0}, _ids("b c"), ("eq", "types")),
    FilterCase("eq-string-is-not-number", {"year": "2021"}, _ids("d"), ("eq", "types")),
    FilterCase("eq-bool-is-not-number", {"year": True}, _ids("e"), ("eq", "types")),
    FilterCase("eq-number-is-not-bool", {"flag": 1}, _ids("m n"), ("eq", "types")),
    FilterCase("eq-false", {"draft": False}, _ids("a"), ("eq", "types")),
    FilterCase("eq-zero-is-not-false", {"draft": 0}, frozenset(), ("eq", "types")),
    FilterCase("eq-float", {"rating": 4.5}, _ids("a"), ("eq",)),
    FilterCase("eq-negative-zero", {"rating": 0}, _ids("j"), ("eq", "types")),
    FilterCase("eq-null", {"lang": None}, _ids("e"), ("eq", "null", "missing")),
    FilterCase("eq-missing-key", {"nope": 1}, frozenset(), ("eq", "missing")),
    FilterCase("eq-several-keys-and", {"source": "a.txt", "lang": "fr"}, _ids("d"), ("eq",)),
    FilterCase(
        "eq-big-int-exact",
        {"big": 9007199254740993},
        _ids("m"),
        ("eq", "types", "int-precision"),
    ),
    FilterCase(
        "eq-big-int-float", {"big": 9007199254740992}, _ids("n"), ("eq", "types", "int-precision")
    ),
    # --- $ne
    FilterCase("ne-string-missing-matches", {"lang": {"$ne": "de"}}, _all_but("a c"), ("ne",)),
    FilterCase("ne-null", {"lang": {"$ne": None}}, _all_but("e"), ("ne", "null")),
    FilterCase("ne-number-vs-string", {"year": {"$ne": 2021}}, _all_but("b c"), ("ne", "types")),
    # --- ranges
    FilterCase("gt-int", {"start_index": {"$gt": 1000}}, _ids("d g"), ("range",)),
    FilterCase("gte-int", {"start_index": {"$gte": 1000}}, _ids("d f g"), ("range",)),
    FilterCase("lt-int", {"start_index": {"$lt": 1000}}, _ids("e"), ("range",)),
    FilterCase("lte-float-and-negative-zero", {"rating": {"$lte": 3}}, _ids("b j"), ("range",)),
    FilterCase("gt-float-operand", {"start_index": {"$gt": 1000.25}}, _ids("d g"), ("range",)),
    FilterCase(
        "gt-skips-strings-and-bools", {"year": {"$gt": 2000}}, _ids("a b c"), ("range", "types")
    ),
    FilterCase("gt-list-any-element", {"tags": {"$gt": 0}}, _ids("e"), ("range", "list")),
    FilterCase("between", {"page": {"$between": [2, 10]}}, _ids("b c d"), ("range",)),
    FilterCase("two-operators-one-key", {"page": {"$gt": 1, "$lt": 10}}, _ids("b c"), ("range",)),
    FilterCase("gt-nested", {"author.age": {"$gte": 18}}, _ids("f"), ("range", "nested")),
    # --- $in / $nin
    FilterCase("in-strings", {"source": {"$in": ["a.txt", "b.txt"]}}, _ids("a b d l"), ("in",)),
    FilterCase("in-mixed-types", {"year": {"$in": [2019, "2021"]}}, _ids("a d"), ("in", "types")),
    FilterCase("in-empty-matches-nothing", {"lang": {"$in": []}}, frozenset(), ("in",)),
    FilterCase("in-null", {"lang": {"$in": [None, "fr"]}}, _ids("d e"), ("in", "null")),
    FilterCase("in-bool", {"draft": {"$in": [True]}}, _ids("b"), ("in", "types")),
    FilterCase("in-number-is-not-bool", {"draft": {"$in": [1, 0]}}, frozenset(), ("in", "types")),
    FilterCase("nin", {"lang": {"$nin": ["de", "en"]}}, _all_but("a b c l"), ("nin", "missing")),
    FilterCase("nin-empty-matches-all", {"lang": {"$nin": []}}, ALL, ("nin",)),
    # --- $exists
    FilterCase("exists-true", {"lang": {"$exists": True}}, _ids("a b c d e l n"), ("exists",)),
    FilterCase("exists-false", {"lang": {"$exists": False}}, _ids("f g h i j k m"), ("exists",)),
    FilterCase(
        "exists-null-value", {"rating": {"$exists": True}}, _ids("a b c j"), ("exists", "null")
    ),
    FilterCase(
        "exists-nested", {"author.name": {"$exists": True}}, _ids("f g l"), ("exists", "nested")
    ),
    FilterCase(
        "exists-false-nested",
        {"author.name": {"$exists": False}},
        _all_but("f g l"),
        ("exists", "nested"),
    ),
    FilterCase(
        "exists-empty-list", {"tags": {"$exists": True}}, _ids("a b c e m n"), ("exists", "list")
    ),
    # --- lists in metadata
    FilterCase("list-eq-any-element", {"tags": "news"}, _ids("a b m"), ("list", "eq")),
    FilterCase("list-ne-no-element", {"tags": {"$ne": "news"}}, _all_but("a b m"), ("list",)),
    FilterCase("list-in", {"tags": {"$in": ["sport", "a"]}}, _ids("a n"), ("list", "in")),
    FilterCase("list-element-string-one", {"tags": "1"}, _ids("e"), ("list", "types")),
    FilterCase("list-element-null", {"tags": None}, _ids("e"), ("list", "null")),
    FilterCase("list-element-bool", {"tags": True}, _ids("e"), ("list", "types")),
    FilterCase("list-no-such-element", {"tags": 2}, frozenset(), ("list",)),
    FilterCase("list-nin", {"tags": {"$nin": ["news", 1]}}, _all_but("a b e m"), ("list", "nin")),
    # --- nested metadata
    FilterCase("nested-dotted", {"author.name": "Ada"}, _ids("f"), ("nested",)),
    FilterCase("dict-is-never-a-scalar", {"author": "Ada"}, _ids("h"), ("nested",)),
    FilterCase("nested-deep", {"nested.deep.x": 1}, _ids("l"), ("nested",)),
    FilterCase("nested-null", {"author.name": None}, _ids("l"), ("nested", "null")),
    FilterCase("nested-through-scalar", {"title.x": {"$exists": True}}, frozenset(), ("nested",)),
    FilterCase("dot-steps-into-dicts", {"a.b": "nested"}, _ids("n"), ("nested",)),
    FilterCase("literal-dot-key-unreachable", {"a.b": "literal dot"}, frozenset(), ("nested",)),
    # --- text patterns
    FilterCase("like-substring", {"title": {"$like": "%bericht%"}}, _ids("f g"), ("like",)),
    FilterCase("like-case-sensitive", {"title": {"$like": "Jahres%"}}, _ids("f"), ("like",)),
    FilterCase("like-whole-value", {"title": {"$like": "bericht"}}, frozenset(), ("like",)),
    FilterCase("ilike-prefix", {"title": {"$ilike": "JAHRES%"}}, _ids("f g"), ("like",)),
    FilterCase("like-one-char", {"code": {"$like": "snake_case"}}, _ids("h j"), ("like",)),
    FilterCase(
        "like-escaped-underscore", {"code": {"$like": "snake\\_case"}}, _ids("h"), ("like",)
    ),
    FilterCase("like-escaped-percent", {"title": {"$like": "100\\%%"}}, _ids("h"), ("like",)),
    FilterCase("like-glob-chars-literal", {"title": {"$like": "*%"}}, frozenset(), ("like",)),
    FilterCase("like-non-strings-never", {"year": {"$like": "20%"}}, _ids("d"), ("like", "types")),
    FilterCase("like-list-element", {"tags": {"$like": "sp%"}}, _ids("a"), ("like", "list")),
    FilterCase("ilike-unicode", {"title": {"$ilike": "ärger"}}, _ids("j"), ("like", "unicode")),
    FilterCase(
        "like-unicode-one-char", {"title": {"$like": "Stra_e"}}, _ids("i"), ("like", "unicode")
    ),
    # --- unicode keys and values
    FilterCase("unicode-key", {"straße": "Müller"}, _ids("i"), ("unicode",)),
    FilterCase("cjk-key-and-value", {"日本": "東京"}, _ids("i"), ("unicode",)),
    FilterCase("emoji-like", {"emoji": {"$like": "🚀%"}}, _ids("i"), ("unicode", "like")),
    FilterCase("quote-in-key", {'say "hi"': "yes"}, _ids("j"), ("unicode",)),
    # --- logic
    FilterCase("and", {"$and": [{"lang": "de"}, {"year": {"$gte": 2020}}]}, _ids("c"), ("logic",)),
    FilterCase("or", {"$or": [{"lang": "de"}, {"lang": "en"}]}, _ids("a b c l"), ("logic",)),
    FilterCase("not", {"$not": {"lang": "de"}}, _all_but("a c"), ("logic",)),
    FilterCase(
        "not-range-missing-matches",
        {"$not": {"start_index": {"$gt": 1000}}},
        _all_but("d g"),
        ("logic", "missing"),
    ),
    FilterCase(
        "nested-logic",
        {
            "$or": [
                {"$and": [{"source": "a.txt"}, {"page": {"$gte": 5}}]},
                {"$not": {"$or": [{"lang": {"$exists": True}}, {"title": {"$exists": True}}]}},
            ]
        },
        _ids("d k m"),
        ("logic",),
    ),
    FilterCase(
        "keys-and-logic-together",
        {"lang": "en", "$or": [{"source": "b.txt"}, {"page": 2}]},
        _ids("b l"),
        ("logic",),
    ),
    FilterCase("double-not", {"$not": {"$not": {"lang": "fr"}}}, _ids("d"), ("logic",)),
    FilterCase(
        "and-with-negated-child", {"lang": "de", "tags": {"$ne": "news"}}, _ids("c"), ("logic",)
    ),
    FilterCase(
        "and-of-negations-only",
        {"lang": {"$ne": "de"}, "tags": {"$nin": ["news"]}},
        _all_but("a b c m"),
        ("logic",),
    ),
    FilterCase(
        "or-with-not",
        {"$or": [{"lang": "fr"}, {"$not": {"lang": {"$exists": True}}}]},
        _ids("d f g h i j k m"),
        ("logic",),
    ),
    FilterCase("not-of-and", {"$not": {"source": "a.txt", "page": 1}}, _all_but("a"), ("logic",)),
    FilterCase(
        "or-of-nothing", {"$or": [{"nope": 1}, {"lang": {"$in": []}}]}, frozenset(), ("logic",)
    ),
)

BAD_CASES: tuple[BadFilterCase, ...] = (
    BadFilterCase("unknown-key-operator", {"a": {"$regex": "x"}}, FilterError, "'$regex'"),
    BadFilterCase("unknown-logic-operator", {"$nor": [{"a": 1}]}, FilterError, "'$nor'"),
    BadFilterCase("dict-value", {"author": {"name": "Ada"}}, FilterError, "author.name"),
    BadFilterCase("list-value", {"tags": ["a", "b"]}, FilterError, "$in"),
    BadFilterCase("mixed-operator-dict", {"a": {"$eq": 1, "b": 2}}, FilterError, "operators"),
    BadFilterCase("empty-operator-dict", {"a": {}}, FilterError, "filter['a']"),
    BadFilterCase("gt-string", {"year": {"$gt": "2020"}}, FilterTypeError, "numbers only"),
    BadFilterCase("gt-bool", {"year": {"$gt": True}}, FilterTypeError, "number"),
    BadFilterCase("in-not-list", {"a": {"$in": "abc"}}, FilterTypeError, "list"),
    BadFilterCase("in-dict-item", {"a": {"$in": [{"x": 1}]}}, FilterTypeError, "[0]"),
    BadFilterCase("eq-list", {"a": {"$eq": [1]}}, FilterError, "$in"),
    BadFilterCase("exists-not-bool", {"a": {"$exists": 1}}, FilterTypeError, "$exists"),
    BadFilterCase("like-not-string", {"a": {"$like": 5}}, FilterTypeError, "pattern"),
    BadFilterCase("like-trailing-backslash", {"a": {"$like": "x\\"}}, FilterError, "backslash"),
    BadFilterCase("between-one-value", {"a": {"$between": [1]}}, FilterError, "[low, high]"),
    BadFilterCase("or-empty", {"$or": []}, FilterError, "non-empty list"),
    BadFilterCase("and-not-list", {"$and": {"a": 1}}, FilterError, "$and"),
    BadFilterCase("not-list", {"$not": [{"a": 1}]}, FilterTypeError, "filter dict"),
    BadFilterCase("nested-empty-filter", {"$or": [{}, {"a": 1}]}, FilterError, "non-empty"),
    BadFilterCase("not-inside-key", {"a": {"$not": {"$eq": 1}}}, FilterError, "at the top"),
    BadFilterCase("key-operator-at-top", {"$in": [1]}, FilterError, "inside a key"),
    BadFilterCase("non-string-key", {1: "a"}, FilterTypeError, "string keys"),
    BadFilterCase("empty-key-part", {"a..b": 1}, FilterError, "empty part"),
    BadFilterCase("nan-value", {"a": math.nan}, FilterError, "finite"),
    BadFilterCase("infinite-bound", {"a": {"$lt": math.inf}}, FilterError, "finite"),
    BadFilterCase("set-value", {"a": {1, 2}}, FilterTypeError, "set"),
    BadFilterCase("string-filter", "lang=de", FilterTypeError, "filter dict"),
    BadFilterCase("list-filter", [{"lang": "de"}], FilterTypeError, "filter dict"),
)
