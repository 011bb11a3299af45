"""Reading records' JSON text with polars: top-level fields, unknown fields, ids that are not ids.

Validation reads every field of a chunk from one ``read_ndjson`` over its JSON texts
(:func:`top_level_texts`), and falls back to exact JSON-path lookups only where the reader refuses
a text. The regular expressions here check the shape of JSON text without decoding it: a list of
strings and an object of numbers (on the compact text polars writes back), an object key (on the
text as given).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import operator
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import polars as pl

from recctl.jsontext import dumps_text
from recctl.records.schema import CONTEXT_FIELDS, STRING_LIST

JSON_STRING = r'"(?:[^"\\]|\\.)*"'
JSON_NUMBER = r"-?[0-9][0-9.eE+-]*"
STRING_LIST_RE = rf"^\[(?:{JSON_STRING}(?:,{JSON_STRING})*)?\]$"
# A list of strings as polars' JSON reader writes an array back (``["a", "b"]``), or compact, with
# only valid escapes and no escaped half of a surrogate pair: text that is surely a valid JSON list
# of strings as it stands, so it can be decoded without being re-written first.
_STRICT_STRING = (
    r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]'
    r'|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"'
)
PLAIN_STRING_LIST_RE = rf"^\[(?:{_STRICT_STRING}(?:, ?{_STRICT_STRING})*)?\]$"
NUMBER_OBJECT_RE = rf"^\{{(?:{JSON_STRING}:{JSON_NUMBER}(?:,{JSON_STRING}:{JSON_NUMBER})*)?\}}$"


def checked_objects(chunk: pl.DataFrame, fields: Sequence[str] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark rows that are not one JSON object, and read the top-level ``fields`` as text.

    Returns ``chunk`` (with ``json`` null and ``error`` set for every row that is not one JSON
    object) and the :func:`top_level_texts` of the good rows. Readers hand NDJSON lines over
    unchecked; when every line is fine this costs the one ``read_ndjson`` that reading the fields
    needs anyway. Only a chunk with a bad line pays for a line-by-line look that names it.
    """
    schema: dict[str, pl.DataType] = {field: pl.String() for field in fields} or {"\x00probe": pl.String()}
    json_text = chunk["json"]
    present = json_text.is_not_null()
    if not present.any() or (parsed := read_objects(json_text.filter(present), schema)) is None:
        canonical = json_text.str.json_path_match("$")
        is_object = json_text.str.strip_chars_start().str.starts_with("{") & canonical.str.starts_with("{")
        problem = (
            pl.DataFrame({"json": json_text, "canonical": canonical, "is_object": is_object})
            .select(
                pl.when(pl.col("json").is_null())
                .then(None)
                .when(pl.col("canonical").is_null())
                .then(pl.lit("invalid JSON"))
                .when(~pl.col("is_object").fill_null(False))
                .then(pl.lit("not a JSON object"))
            )
            .to_series()
        )
        chunk = chunk.with_columns(
            pl.coalesce(pl.col("error"), problem).alias("error"),
            pl.when(problem.is_null()).then(pl.col("json")).alias("json"),
        )
        return chunk, top_level_texts(chunk["json"], fields)
    parsed = with_exact_nested(parsed, json_text.filter(present))
    return chunk, spread_rows(parsed.rename({field: f"__top__{field}" for field in fields}), present)


LIST_GIVEN = "[...]"
"""The text :func:`fields_with_lists` gives a list field that a row has (its elements are elsewhere)."""


def fields_with_lists(
    chunk: pl.DataFrame, fields: Sequence[str], lists: Sequence[str]
) -> tuple[pl.DataFrame, dict[str, pl.Series]] | None:
    """The :func:`top_level_texts` of ``fields`` and, for the ``lists`` among them, each row's
    array elements as text (``List(String)``: objects as JSON text, strings unquoted), all from one
    ``read_ndjson``. A list field's own text column only tells whether the row has the field
    (:data:`LIST_GIVEN`). None when any row is not a JSON object, or a list field is not an array
    in some row: the caller reads the texts as usual then (see :func:`checked_objects`).
    """
    json_text = chunk["json"]
    if json_text.null_count() or json_text.str.contains("\\", literal=True).any():
        return None  # (an escape: the elements would be written back wrong, see with_exact_nested)
    schema: dict[str, pl.DataType] = {
        field: pl.List(pl.String()) if field in lists else pl.String() for field in fields
    }
    parsed = read_objects(json_text, schema)
    if parsed is None:
        return None
    texts = parsed.select(
        pl.when(pl.col(field).is_not_null()).then(pl.lit(LIST_GIVEN)).alias(f"__top__{field}")
        if field in lists
        else pl.col(field).alias(f"__top__{field}")
        for field in fields
    )
    return texts, {field: parsed[field] for field in lists}


# Text that a JSON boolean or a JSON number other than an integer could be read as (``true``,
# ``1.5``, ``1e+22``). An integer reads as digits, and digits are an id whatever their JSON type
# was, so they do not match (one regex: it runs on every id of every row).
_MAYBE_NOT_AN_ID = r"^(?:true|false|-?inf|NaN|-?[0-9]+[.eE+-][0-9.eE+-]*)$"


def non_id_values(objects: pl.Series, values: pl.Series, key: str) -> pl.Series | None:
    """Per row, whether ``key`` of the JSON object in ``objects`` is a boolean or a number that is
    not an integer (so not an id); None when no row is.

    ``values`` is the key's text as the JSON reader gives it: a string and a boolean (or number)
    of the same spelling read alike, so only the rows whose text could be a boolean or a
    non-integral number are parsed again, with typed probes (a string never fits them). That is
    rarely any row: ids are seldom ``"true"`` or ``"1.5"``.
    """
    suspect = values.str.contains(_MAYBE_NOT_AN_ID).fill_null(False)
    if not suspect.any():
        return None
    rows = objects.filter(suspect)
    body = (rows.str.join("\n").item() or "").encode()
    try:
        boolean = pl.read_ndjson(io.BytesIO(body), schema={key: pl.Boolean()}, ignore_errors=True)[key]
        number = pl.read_ndjson(io.BytesIO(body), schema={key: pl.Float64()}, ignore_errors=True)[key]
        if boolean.len() != rows.len() or number.len() != rows.len():
            raise ValueError("row count changed")
    except (pl.exceptions.PolarsError, OSError, ValueError):
        typed = [json.loads(text).get(key) for text in rows.to_list()]  # rare: exact, row by row
        boolean = pl.Series([v if isinstance(v, bool) else None for v in typed], dtype=pl.Boolean)
        number = pl.Series(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in typed],
            dtype=pl.Float64,
        )
    bad = boolean.is_not_null() | (number.is_not_null() & (~number.is_finite() | (number != number.floor())))
    return suspect.scatter(suspect.arg_true(), bad.fill_null(False))


def read_objects(json_text: pl.Series, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    """One ``read_ndjson`` over the texts (one object each), or None if polars refuses any of them."""
    body = json_text.str.join("\n").cast(pl.Binary).item() or b""
    try:
        parsed = pl.read_ndjson(io.BytesIO(body), schema=schema)
    except (pl.exceptions.PolarsError, OSError):
        # OSError: polars takes input that starts with a compression format's magic bytes (a
        # garbage line such as "x\x01...", zlib's) for compressed data, and fails to inflate it.
        return None
    return parsed if parsed.height == json_text.len() else None


def top_level_texts(json_text: pl.Series, fields: Sequence[str]) -> pl.DataFrame:
    """Columns ``__top__<field>``: each field's value as text, all fields from one parse.

    Strings come unquoted, numbers as written, objects and arrays as JSON text; absent or null
    values are null, and so is every field of a row whose ``json`` is null. One
    ``read_ndjson`` over the chunk costs about as much as a single JSON-path lookup per field.
    """
    names = {field: f"__top__{field}" for field in fields}
    valid = json_text.is_not_null()
    schema: dict[str, pl.DataType] = {field: pl.String() for field in fields}
    parsed = read_objects(json_text.filter(valid), schema) if valid.any() else pl.DataFrame(schema=schema)
    if parsed is None:
        # The reader refused something the path lookups accept: take the slower, exact route.
        return pl.DataFrame({names[f]: json_text.str.json_path_match(f"$.{f}") for f in fields})
    parsed = with_exact_nested(parsed, json_text.filter(valid))
    return spread_rows(parsed.rename(names), valid)


def with_exact_nested(parsed: pl.DataFrame, json_text: pl.Series) -> pl.DataFrame:
    """``parsed`` (the fields' texts as ``read_ndjson`` gives them, a row per ``json_text``) with
    each object or array value that polars wrote back wrong read again exactly.

    polars' reader (2.1) writes a nested value back as text without escaping backslashes, control
    characters and the quotes of keys: ``{"k": "a\\\\b"}`` comes back as ``{"k": "a\\b"}``, another
    value, and a tab as no JSON at all. Only a value whose JSON needs an escape is affected: one
    in a row holding a backslash, whose own text (by a JSON-path lookup) holds one too. Those
    values (rare) are read again from their row with Python's ``json`` (the first of repeated keys
    kept, as polars keeps it; integers of any size kept) and written compact. A value that cannot
    be written as UTF-8 (half of a surrogate pair) keeps polars' text, which the rules then refuse
    or take as it is, as before. Every other value, strings among them, is polars' own: the same
    value reads the same whichever row or route it comes from.
    """
    escaped = json_text.str.contains("\\", literal=True).fill_null(False)
    if not escaped.any():
        return parsed
    columns = []
    for field in parsed.columns:
        text = parsed[field]
        nested = (escaped & (text.str.starts_with("{") | text.str.starts_with("["))).fill_null(False)
        if field.startswith("\x00") or not nested.any():
            columns.append(text)
            continue
        where = nested.arg_true()
        own = json_text.gather(where).str.json_path_match(f"$.{field}")
        where = where.filter(own.str.contains("\\", literal=True).fill_null(True))
        if where.is_empty():
            columns.append(text)
            continue
        exact = [_exact_text(row, field) for row in json_text.gather(where).to_list()]
        kept = text.gather(where).to_list()
        fixed = [new if new is not None else old for new, old in zip(exact, kept, strict=True)]
        columns.append(text.scatter(where, pl.Series(fixed, dtype=pl.String)))
    return pl.DataFrame(columns)


def _exact_text(row: str | None, field: str) -> str | None:
    """The compact JSON text of ``field`` of the JSON object ``row``; None when it cannot be had."""
    try:
        value = json.loads(row or "", object_pairs_hook=_first_of_repeated_keys)[field]
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeEncodeError):
        return None
    if not isinstance(value, dict | list):
        return None  # a string that looks like JSON: polars' text of a string is the string itself
    return dumps_text(value)


def _first_of_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in pairs:
        kept.setdefault(key, value)
    return kept


def spread_rows(parsed: pl.DataFrame, valid: pl.Series) -> pl.DataFrame:
    """Rows of ``parsed`` (one per true value of ``valid``) placed at those positions, nulls elsewhere."""
    if parsed.height == valid.len():
        return parsed
    positions = pl.DataFrame({"__row": valid.arg_true().cast(pl.Int64)}).hstack(parsed)
    return (
        pl.DataFrame({"__row": pl.int_range(0, valid.len(), eager=True, dtype=pl.Int64)})
        .join(positions, on="__row", how="left", maintain_order="left")
        .drop("__row")
    )


def extra_fields(json_text: pl.Series, known: set[str], *, nested: set[str] | None = None) -> pl.Series:
    """Per row, a JSON object of the top-level fields not in ``known`` (null when there are none).

    ``nested`` names keys known inside nested objects (the caller guarantees none of them is a
    top-level key): a row whose every key, at any depth, is known or nested has no unknown field.

    Vectorised through polars' JSON decoder. When the unknown fields of a chunk have conflicting
    types across rows (which polars cannot put in one column), the chunk falls back to ``json``.
    """
    if json_text.len() == 0:
        return pl.Series("extra", [], dtype=pl.String)
    # Cheap pre-check on the text: when no key at any depth is outside the known names, no row has
    # unknown top-level fields and the full decode below can be skipped. One regex scan, no
    # extraction (extracting every key took ten times as long).
    names = frozenset(known | set(CONTEXT_FIELDS) | (nested or set()))
    if not json_text.str.contains(unknown_key_pattern(names)).any():
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    try:
        decoded = json_text.str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return _extra_fields_slow(json_text, known)
    if not isinstance(decoded.dtype, pl.Struct):
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    # Columns by position, never pl.col(name): a key may be "*" or "^...$", which pl.col expands.
    unknown = [index for index, field in enumerate(decoded.dtype.fields) if field.name not in known]
    if not unknown:
        return pl.Series("extra", [None] * json_text.len(), dtype=pl.String)
    members = decoded.struct.unnest().select(pl.nth(unknown))
    pieces = [
        pl.when(pl.nth(index).is_not_null()).then(
            pl.struct(pl.nth(index)).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")
        )
        for index in range(len(unknown))
    ]
    joined = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    return members.select(
        pl.when(joined.str.len_bytes() > 0)
        .then(pl.concat_str(pl.lit("{"), joined, pl.lit("}")))
        .alias("extra")
    ).to_series()


@functools.cache
def unknown_key_pattern(known: frozenset[str]) -> str:
    """A regex matching an object key (``"name":`` after ``{`` or ``,``) whose name is not in ``known``.

    The regex has no lookahead, so "not one of these names" is spelled out over the names' trie:
    at each point the key may end early, take a character no name continues with, or follow a
    name. A key written with escapes counts as unknown (the caller then decodes and finds out).
    """
    if not all(name.isidentifier() for name in known):
        raise ValueError("known names must be identifiers")
    trie: dict[str, Any] = {}
    for name in known:
        node = trie
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a name
    any_char = r'(?:[^"\\]|\\.)'

    def rest(node: dict[str, Any]) -> str:
        continuations = sorted(char for char in node if char)
        options = [f"{char}{rest(node[char])}" for char in continuations]
        options.append(rf'(?:[^"\\{"".join(continuations)}]|\\.){any_char}*')  # leaves every name
        if "" not in node:
            options.append("")  # ends before a name does
        return "(?:" + "|".join(options) + ")"

    return rf'[{{,]\s*"{rest(trie)}"\s*:'


def _extra_fields_slow(json_text: pl.Series, known: set[str]) -> pl.Series:
    # Fallback for chunks whose unknown fields mix types; polars has no per-row dynamic-key decode.
    values = []
    for text in json_text.to_list():
        unknown = (
            {k: v for k, v in json.loads(text).items() if k not in known and v is not None} if text else {}
        )
        values.append(json.dumps(unknown, ensure_ascii=False, separators=(",", ":")) if unknown else None)
    return pl.Series("extra", values, dtype=pl.String)


@dataclass(frozen=True)
class ParsedFields:
    """The top-level fields of already-parsed JSON objects, as :func:`top_level_texts` gives them
    from the objects' JSON text (see :func:`fields_of_objects`)."""

    texts: pl.DataFrame
    """``__top__<field>`` per field: its text (strings unquoted, numbers as written), or null."""
    lists: dict[str, pl.Series]
    """String-list fields whose every value is a list of strings (or missing), already typed."""
    objects: dict[str, pl.Series]
    """Per field read from JSON text (values other than strings, numbers and lists of strings),
    the one-field object ``{"<field>": value}`` of each row: what an id check looks at."""


_NONE = type(None)


def fields_of_objects(
    objects: Sequence[Any], schema: dict[str, pl.DataType], skip: Collection[str] = ()
) -> ParsedFields | None:
    """The fields of ``schema`` (but ``skip`` and ``extra``) of parsed JSON objects, from the
    objects themselves: what :func:`top_level_texts` reads from their compact JSON text, without
    writing it and reading it back.

    A field's values are taken as they are when they are all strings, all numbers (for a
    ``Float64`` field: the numbers' text as orjson writes it, which casts to the same floats), or
    all lists of strings (for a list field: typed directly); a field with other values (booleans,
    objects, a mix) is read as JSON text, one field at a time, exactly as the whole object would
    be. None when an object is not a ``dict`` (or there is none): the caller reads the text then.
    """
    if not objects or set(map(type, objects)) != {dict}:
        return None
    columns: dict[str, pl.Series] = {}
    lists: dict[str, pl.Series] = {}
    as_json: dict[str, pl.Series] = {}
    names = [name for name in schema if name != "extra" and name not in skip]
    by_field: Sequence[Sequence[Any]] | None = None
    if len(names) > 1:  # (itemgetter of one name gives the value itself, not a tuple)
        with contextlib.suppress(KeyError):  # usually every object has every field: one pass each
            by_field = list(zip(*map(operator.itemgetter(*names), objects), strict=True))
    if by_field is None:
        by_field = [[item.get(name) for item in objects] for name in names]
    for name, values in zip(names, by_field, strict=True):
        dtype = schema[name]
        column = f"__top__{name}"
        types = set(map(type, values)) - {_NONE}
        if types <= {str}:
            columns[column] = pl.Series(column, values, dtype=pl.String)
            continue
        if dtype == STRING_LIST and types <= {list}:
            typed = _string_lists(values)
            if typed is not None:
                lists[name] = typed.alias(column)
                continue
        elif dtype == pl.Float64 and types <= {int, float}:
            text = _number_texts(values)
            if text is not None:
                columns[column] = text.alias(column)
                continue
        one_field = pl.Series("json", [dumps_text({name: value}) for value in values], dtype=pl.String)
        read = read_objects(one_field, {name: pl.String()})
        if read is None:
            return None
        columns[column] = with_exact_nested(read, one_field)[name].alias(column)
        as_json[name] = one_field
    return ParsedFields(pl.DataFrame(list(columns.values())), lists, as_json)


def _string_lists(values: Sequence[Any]) -> pl.Series | None:
    """Lists of strings (or None) as a typed column; None when an element is not a string."""
    if not set(map(type, chain.from_iterable(value for value in values if value is not None))) <= {str}:
        return None
    try:  # one text for the whole column, decoded by polars (building it list by list is slow)
        text = orjson.dumps(values).decode("utf-8")
    except orjson.JSONEncodeError:
        return None
    return pl.Series([text]).str.json_decode(pl.List(STRING_LIST)).explode()


def _number_texts(values: Sequence[Any]) -> pl.Series | None:
    """Numbers (or None) as the text orjson writes each; None when it cannot write them all
    (an integer beyond 64 bits)."""
    try:
        body = orjson.dumps(values)
    except orjson.JSONEncodeError:
        return None
    tokens = pl.Series([body[1:-1].decode("ascii")]).str.split(",").explode()
    return pl.select(pl.when(tokens != "null").then(tokens)).to_series()
