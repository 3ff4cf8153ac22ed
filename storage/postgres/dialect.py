"""SQLite's SQL, as the repositories write it, in PostgreSQL's dialect.

The PostgreSQL backend runs the very statements of storage/sqlite/repositories.py (one source
of truth: a method another engineer adds there works here unchanged) through `translate`,
which rewrites the few things the two dialects spell differently:

- `?` placeholders → `$1, $2 …` (outside string literals);
- `a IS NOT b` (SQLite's null-safe comparison, also on row values) → `a IS DISTINCT FROM b`;
- the SQLite functions used: two-argument `max`/`min` → `greatest`/`least`, `group_concat`
  → `string_agg`, `json_extract(col, '$.key')` → `col::json ->> 'key'`, `json_each(?)` →
  `json_array_elements_text(?::json)`;
- the `temp.` schema → `pg_temp.`;
- SQLite's planner hints `INDEXED BY name` are dropped (PostgreSQL's planner picks for itself);
- `a = ? COLLATE NOCASE` → `lower(a) = lower(?)` (PostgreSQL has no NOCASE collation);
- `LIKE` → `ILIKE`: SQLite's LIKE ignores the case of ASCII letters, PostgreSQL's does not.

`rowid` needs no rewrite: the PostgreSQL schema gives every table a `rowid` column
(storage/postgres/port.py). A statement the rules do not cover fails loudly on PostgreSQL in
tests/test_storage_contract.py, which runs every repository method on both backends.
"""

from __future__ import annotations

import functools
import re

_LITERAL_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?")
_IS_NOT = re.compile(r"\bIS\s+NOT\b(?!\s+(?:NULL|TRUE|FALSE|DISTINCT)\b)", re.I)
_SCALAR = re.compile(r"\b(max|min)\(([^(),]+),([^(),]+)\)", re.I)
_SCALARS = {"max": "greatest", "min": "least"}
_GROUP_CONCAT = re.compile(r"\bgroup_concat\(", re.I)
_JSON_EXTRACT = re.compile(r"\bjson_extract\(([\w.]+),\s*'\$\.(\w+)'\)", re.I)
_JSON_EACH = re.compile(r"\bjson_each\(\?\)", re.I)
_TEMP = re.compile(r"\btemp\.", re.I)
_INDEXED_BY = re.compile(r"\s+INDEXED\s+BY\s+\w+", re.I)
_LIKE = re.compile(r"(?<![\w'])LIKE\b", re.I)
_NOCASE = re.compile(r"([\w.]+)\s*=\s*\?\s+COLLATE\s+NOCASE\b", re.I)


def _marks(sql: str) -> str:
    n = 0

    def number(m: re.Match) -> str:
        nonlocal n
        if m.group(0) != "?":
            return m.group(0)
        n += 1
        return f"${n}"

    return _LITERAL_OR_MARK.sub(number, sql)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """`sql` (SQLite, `?` marks) for PostgreSQL (`$n` marks); cached: the statements are few and fixed."""
    out = _JSON_EACH.sub("json_array_elements_text(?::json) AS json_each(value)", sql)
    out = _IS_NOT.sub("IS DISTINCT FROM", out)
    out = _SCALAR.sub(
        lambda m: f"{'greatest' if m.group(1).lower() == 'max' else 'least'}({m.group(2)},{m.group(3)})", out
    )
    out = _GROUP_CONCAT.sub("string_agg(", out)
    out = _JSON_EXTRACT.sub(r"(\1::json ->> '\2')", out)
    out = _TEMP.sub("pg_temp.", out)
    out = _INDEXED_BY.sub("", out)
    out = _NOCASE.sub(r"lower(\1) = lower(?)", out)
    out = _LIKE.sub("ILIKE", out)
    return _marks(out)


_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.I)
_INSERT_VALUES = re.compile(r"\s*INSERT\s+INTO\s+(\w+)\b[^;]*?\bVALUES\b", re.I | re.S)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


@functools.lru_cache(maxsize=4096)
def shape(sql: str) -> tuple[bool, bool, str | None]:
    """(is a write, has RETURNING, the table of an `INSERT … VALUES`)."""
    insert = _INSERT_VALUES.match(sql)
    return bool(_WRITE.match(sql)), bool(_RETURNING.search(sql)), insert.group(1).lower() if insert else None
