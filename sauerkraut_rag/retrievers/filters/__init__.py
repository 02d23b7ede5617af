"""One metadata filter language for every backend and adapter (this docstring is the spec).

A filter is a dict, written as for LangChain's Chroma, PGVector or Pinecone stores::

    {"lang": "de"}                                   # equality
    {"lang": "de", "year": {"$gte": 2020}}           # several keys: all must match
    {"source": {"$in": ["a.txt", "b.txt"]}}          # any of
    {"$or": [{"lang": "de"}, {"lang": "en"}]}        # logic, nested freely
    {"title": {"$like": "%Umsatz%"}}                 # text pattern (% any run, _ one char)
    {"author.name": "Ada"}                           # dotted key: nested metadata dicts

:func:`parse_filter` validates it once per search and returns a small immutable tree
(:mod:`.tree`: ``Comparison(path, op, value)``, ``And(children)``, ``Or(children)``,
``Not(child)``) that each backend compiles (SQLite in ``voyager/filter_sql.py``, Qdrant
``Filter`` objects in ``qdrant/``); :func:`matches` evaluates a tree in plain Python.

Operators on a key (``{"key": {"$op": operand}}``; several operators on one key: all)::

    $eq  value   equal (a bare value means $eq)    $ne   value   not equal
    $gt/$gte/$lt/$lte number                        $between [low, high] (inclusive)
    $in  [values] equal to any (empty: nothing)     $nin  [values] equal to none
    $exists true|false  key present / missing      $like / $ilike pattern

Logic: ``{"$and": [f, ...]}``, ``{"$or": [f, ...]}`` (non-empty lists), ``{"$not": f}``.

Semantics (every backend gives exactly these; a shared test matrix checks them):

* **Values** are JSON scalars: strings, numbers, booleans, null (``None``); ``$in``,
  ``$nin`` and ``$between`` take lists of them. Comparison is by JSON value: ``1 == 1.0``,
  ``"1" != 1``, booleans are not numbers (``true != 1``), null equals only null.
  ``$gt``/``$gte``/``$lt``/``$lte``/``$between`` take numbers and match numbers only (no
  string or date ordering; store dates as numbers). Strings compare exactly (code points,
  no Unicode normalisation).
* **Missing keys** never match ``$eq``, ``$gt``..., ``$in``, ``$like``, ``$exists: true``;
  they match ``$ne``, ``$nin``, ``$exists: false`` and any ``$not`` of those.
  ``{"key": None}`` matches a stored null, not a missing key.
* **Lists in metadata** (e.g. ``"tags": ["a", "b"]``): a comparison passes when any
  element passes (as in Qdrant, Pinecone, MongoDB): ``{"tags": "a"}`` and
  ``{"tags": {"$in": ["a", "z"]}}`` match; ``$ne``/``$nin`` match when no element is
  equal; ``$exists`` looks at the key only. An empty list matches no comparison but
  ``$exists``. Elements that are themselves lists or dicts never equal a scalar.
* **Nested metadata**: a dotted key ``"a.b"`` reaches ``{"a": {"b": ...}}``; each dot
  steps into a dict (never into a list); a key containing a literal ``.`` cannot be
  filtered on. A dict or list is never compared as a whole: ``{"a": {"b": 1}}`` as a
  filter is an error that points to ``{"a.b": 1}``; a list value needs ``$in``.
* **Text**: ``$like`` is SQL ``LIKE`` as in LangChain's PGVector store: ``%`` any run of
  characters, ``_`` one character, ``\\`` escapes; the whole value must match, case
  counts. ``$ilike`` compares ``str.lower()`` of both. Chosen over ``$contains``
  because PGVector (the LangChain store whose dict filters this language follows)
  names it so, and because ``"%x%"``, ``"x%"`` and ``"%x"`` cover substring, prefix and
  suffix in one operator. Non-strings never match.
* **Errors**: anything else raises :class:`~sauerkraut_rag.errors.FilterError` (wrong
  Python types: :class:`~sauerkraut_rag.errors.FilterTypeError`) naming the offending
  part and listing the supported operators. ``None`` and ``{}`` mean "no filter".
  A backend that cannot evaluate a valid filter (e.g. a Python callable on a server)
  raises :class:`~sauerkraut_rag.errors.UnsupportedFilterError`.

Trees are normalised: ``$ne``/``$nin``/``$exists: false`` become ``Not(...)``,
``$between`` becomes ``And(gte, lte)``, nested ``And``/``Or`` are flattened, and
``And``/``Or`` always have at least one child.
"""

from __future__ import annotations

from sauerkraut_rag.errors import FilterError, FilterTypeError, UnsupportedFilterError
from sauerkraut_rag.retrievers.filters.evaluate import json_equal, lookup, matches
from sauerkraut_rag.retrievers.filters.parse import KEY_OPERATORS, LOGIC_OPERATORS, parse_filter
from sauerkraut_rag.retrievers.filters.patterns import escape_like, like_glob, like_regex
from sauerkraut_rag.retrievers.filters.tree import (
    FILTER_NODES,
    And,
    Comparison,
    FilterNode,
    Not,
    Op,
    Or,
    Scalar,
    to_dict,
)

__all__ = [
    "FILTER_NODES",
    "KEY_OPERATORS",
    "LOGIC_OPERATORS",
    "And",
    "Comparison",
    "FilterError",
    "FilterNode",
    "FilterTypeError",
    "Not",
    "Op",
    "Or",
    "Scalar",
    "UnsupportedFilterError",
    "escape_like",
    "json_equal",
    "like_glob",
    "like_regex",
    "lookup",
    "matches",
    "parse_filter",
    "to_dict",
]
