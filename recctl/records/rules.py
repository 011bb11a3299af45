"""The rule engine: typed columns and rejection reasons for one chunk, as polars expressions.

:class:`Rules` reads the fields of a chunk of records (``input_position``, ``raw``, ``json``,
``error``: a :class:`~recctl.formats.RawChunk` frame) and builds, per field, its typed column
and the checks on it, each with the reason a row failing it gets. Nothing is looped over per
row: every rule is a polars expression over the whole chunk, and :meth:`Rules.result`
evaluates them all in one lazy pass. Which rules a record kind has is its ``validate_*``
function in :mod:`recctl.records.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from recctl.records.scan import (
    PLAIN_STRING_LIST_RE,
    STRING_LIST_RE,
    ParsedFields,
    checked_objects,
    extra_fields,
    fields_with_lists,
    non_id_values,
    read_objects,
    spread_rows,
    top_level_texts,
    with_exact_nested,
)
from recctl.records.schema import (
    ASSESSMENT_ONLY,
    KINDS,
    RECORD_KINDS,
    REQUIRED,
    ROW_NAMES,
    SCHEMAS,
    STRING_LIST,
    UTC_MS,
    RecordKind,
)
from recctl.records.timestamps import parse_timestamp

EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows in the stored shape, and rejected rows with their reasons.

    ``duplicates`` counts valid records left out because they repeat the key of an earlier record
    of the same chunk. Only a kind stored as several rows per record (impressions: one per item)
    does this, since its rows no longer say which record they came from; the others leave repeats
    to the store.
    """

    records: pl.DataFrame
    rejects: pl.DataFrame
    duplicates: int = 0


class Rules:
    """Builds typed columns and their error reasons for one chunk.

    Every check appends a ``(column, reason)`` pair; a row's reason is the first failing check in
    the order the checks were added (the field order of the schemas).
    """

    def __init__(
        self,
        chunk: pl.DataFrame,
        top_level: Sequence[str],
        *,
        keep_extra: bool = True,
        overrides: Mapping[str, pl.Series] | None = None,
        parsed: ParsedFields | None = None,
        element_lists: Sequence[str] = (),
    ) -> None:
        """``parsed``: the top-level fields already read from parsed objects (every row is an
        object; :func:`~recctl.records.scan.fields_of_objects`), instead of from ``chunk``'s
        ``json`` text. ``element_lists``: top-level array fields whose elements are wanted; when
        every row gives them as arrays they are read in the same parse as the other fields, into
        :attr:`elements` (see :func:`~recctl.records.scan.fields_with_lists`)."""
        self.keep_extra = keep_extra
        self.top_level = set(top_level)
        self.overridden = set(overrides or ())
        self.parsed = parsed
        if parsed is not None and keep_extra:
            raise ValueError(
                "unknown fields are read from the JSON text: parsed fields need keep_extra=False"
            )
        self.elements: dict[str, pl.Series] = {}
        with_lists = fields_with_lists(chunk, top_level, element_lists) if element_lists else None
        if with_lists is not None and parsed is None:
            texts, self.elements = with_lists
        elif parsed is None:
            chunk, texts = checked_objects(chunk, top_level)
        else:
            texts = parsed.texts.hstack(list(parsed.lists.values()))
        if overrides:  # values the caller sets, as if each record held them (text, like every field)
            texts = texts.with_columns(values.alias(f"__top__{name}") for name, values in overrides.items())
        self.chunk = chunk
        self.texts = texts
        self.frame = chunk.hstack(texts).lazy()
        # Columns derived in three levels: 0 reads the chunk's texts, 1 reads level 0, 2 reads level 1.
        # Each level becomes one plan node (not one per column), which keeps small chunks cheap.
        self.derived: list[dict[str, pl.Expr]] = [{}, {}, {}]
        self.read_already: dict[tuple[str, str], str] = {}  # (object column, key) -> column of its text
        self.errors: list[pl.Expr] = []
        self.typed: dict[str, pl.Expr] = {}
        # Eager text of the object columns (and of the keys read from them), for checks that need
        # the JSON itself rather than the text of a value (is this id a string or a boolean?).
        self.objects: dict[str, pl.Series] = {}

    # -- reading raw values -------------------------------------------------------------------
    def text(self, name: str, path: str | None = None, source: str = "json") -> str:
        """Add the raw text of ``$.path`` as column ``__<name>``; blank text counts as missing."""
        column = f"__{name}"
        path = path or name
        if source == "json" and path in self.top_level:
            value = pl.col(f"__top__{path}")
        elif (source, path) in self.read_already:
            value = pl.col(self.read_already[source, path])
        else:
            value = pl.col(source).str.json_path_match(f"$.{path}")
        self.derived[0][column] = pl.when(value.str.strip_chars().str.len_bytes() > 0).then(value)
        return column

    def check(self, bad: pl.Expr, reason: str) -> None:
        self.errors.append(pl.when(bad).then(pl.lit(reason)))

    def reasons(self, name: str, reasons: pl.Series) -> None:
        """Reasons worked out outside the engine (one per row of the chunk, null where the row is
        fine), checked at this point of the order: the rules of a nested list, say."""
        column = f"__{name}__reasons"
        self.frame = self.frame.with_columns(reasons.cast(pl.String).alias(column))
        self.errors.append(pl.col(column))

    # -- the kind of the record ------------------------------------------------------------------
    def guard(self, kind: RecordKind) -> None:
        """Reject a row that is a record of another kind as ``looks like a <kind> row``.

        For a catalog ``kind``, a row looks like a record of kind O when it holds two of the fields
        O requires that ``kind`` does not know (one, if O requires only one such field), present
        or not the rest. Otherwise (a log, or O = assessments, whose only required field
        every kind has), it looks like O when it has every field O requires, one of the fields
        only O has (of those it requires, else of :data:`ASSESSMENT_ONLY`), and lacks a field
        ``kind`` requires. So an interactions or recommendations file ingested as assessments is
        rejected row by row instead of overwriting the catalog, even with blank cells. Checked
        first: the reason names the mistake, not a symptom.
        Logs (interactions, impressions) are only checked on rows that lack a required field (the
        others are fine).
        """
        if self.parsed is not None:
            raise ValueError("the guard reads the JSON text: it cannot run on parsed fields")
        own = REQUIRED[kind]
        catalog = not KINDS[kind].log
        json_text = self.chunk["json"]

        def lacks_own(rows: pl.Series | None = None) -> pl.Series:
            texts = [self.texts[f"__top__{name}"] for name in own]
            if rows is not None:
                texts = [text.gather(rows) for text in texts]
            return pl.select(pl.any_horizontal(_blank(text) for text in texts)).to_series()

        plans = []
        for other in RECORD_KINDS:
            if other == kind:
                continue
            fields = set(SCHEMAS[kind])
            unknown_required = tuple(name for name in REQUIRED[other] if name not in fields)
            signature = unknown_required or tuple(name for name in ASSESSMENT_ONLY if name not in fields)
            plans.append((other, unknown_required, signature))
        # Which rows to look at: for a log only those lacking a required field (the others are
        # records of the log, whatever else they hold); then only rows that name a key of some
        # signature, found by a literal scan (ten times a regex's speed). An exact read of the
        # fields follows for those, usually none.
        if catalog:
            where = pl.int_range(0, json_text.len(), eager=True, dtype=pl.UInt32)
            texts = json_text
        else:
            where = (json_text.is_not_null() & lacks_own()).arg_true()
            texts = json_text.gather(where)
        named = pl.select(
            pl.any_horizontal(
                texts.str.contains(f'"{name}"', literal=True).fill_null(False)
                for _, _, signature in plans
                for name in signature
            )
        ).to_series()
        where = where.filter(named)
        if where.is_empty():
            return
        candidates = pl.Series([False] * json_text.len(), dtype=pl.Boolean).scatter(where, True)
        needed = sorted({name for other, _, signature in plans for name in (*REQUIRED[other], *signature)})
        values = top_level_texts(json_text.filter(candidates), needed)
        present = {name: ~_blank(values[f"__top__{name}"]) for name in needed}
        lacking = lacks_own(where)
        reason = pl.Series([None] * values.height, dtype=pl.String)
        # When a row could be of several other kinds, the one it has the most required fields of
        # names it (an impression has an interaction's user_id and timestamp, but also its own).
        best = pl.Series([0] * values.height, dtype=pl.Int32)
        for other, unknown_required, signature in plans:
            if catalog and unknown_required:
                # Two of the other kind's own required fields (one, if it has only one) tell, even
                # when the row misses some: a recommendations file with a blank confidence_score
                # must not overwrite assessments. One such field alone may be an extra.
                named_fields = pl.sum_horizontal(present[name].cast(pl.Int32) for name in unknown_required)
                looks = pl.select(named_fields >= min(2, len(unknown_required))).to_series()
            else:
                has_required = pl.select(
                    pl.all_horizontal(present[name] for name in REQUIRED[other])
                ).to_series()
                has_signature = pl.select(pl.any_horizontal(present[name] for name in signature)).to_series()
                looks = has_required & has_signature & lacking
            score = pl.select(
                pl.sum_horizontal(
                    present[name].cast(pl.Int32) for name in unknown_required or REQUIRED[other]
                )
            ).to_series()
            better = looks & (score > best)
            reason = pl.select(
                pl.when(better).then(pl.lit(f"looks like {ROW_NAMES[other]}")).otherwise(reason)
            ).to_series()
            best = pl.select(pl.when(better).then(score).otherwise(best)).to_series()
        if reason.null_count() == reason.len():
            return
        everywhere = pl.Series([None] * json_text.len(), dtype=pl.String).scatter(
            candidates.arg_true(), reason
        )
        self.frame = self.frame.with_columns(everywhere.alias("__wrong_kind"))
        self.errors.append(pl.col("__wrong_kind"))

    # -- typed fields ---------------------------------------------------------------------------
    def string(
        self,
        name: str,
        *,
        required: bool = False,
        path: str | None = None,
        source: str = "json",
        identifier: bool = False,
    ) -> None:
        """A text field. An ``identifier`` takes a string or an integer (stored as its decimal
        text) and nothing else: a boolean or a non-integral number is rejected, not turned into
        ``"true"`` or ``"1.5"``."""
        raw = pl.col(self.text(name, path, source))
        wanted = "a string or an integer" if identifier else "a string"
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(
            raw.str.contains(r"^\s*[\[{]") & raw.str.json_path_match("$").is_not_null(),
            f"{name}: must be {wanted}",
        )
        if identifier:
            self._check_identifier(name, path or name, source)
        self.typed[name] = raw

    def _check_identifier(self, name: str, key: str, source: str) -> None:
        if source == "json":
            if key in self.overridden or key not in self.top_level:
                return  # a value the caller set (as text), not one the record gave
            objects, values = self.chunk["json"], self.texts[f"__top__{key}"]
            if self.parsed is not None:
                if key not in self.parsed.objects:
                    return  # strings and numbers taken as they are: no boolean, no float text
                objects = self.parsed.objects[key]
        else:
            objects = self.objects[source]
            read = self.objects.get(f"{source}.{key}")
            values = objects.str.json_path_match(f"$.{key}") if read is None else read
        not_an_id = non_id_values(objects, values, key)
        if not_an_id is not None:
            column = f"__{name}__not_an_id"
            self.frame = self.frame.with_columns(not_an_id.alias(column))
            self.check(pl.col(column), f"{name}: must be a string or an integer")

    def enum(self, name: str, allowed: Sequence[str], *, required: bool = False) -> None:
        column = self.text(name)
        raw = pl.col(column)
        self.derived[1][f"{column}__value"] = raw.str.strip_chars().str.to_lowercase()
        value = pl.col(f"{column}__value")
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(
            raw.is_not_null() & ~value.is_in(list(allowed)), f"{name}: must be one of {'|'.join(allowed)}"
        )
        self.typed[name] = value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_exclusive: bool = False,
        path: str | None = None,
        source: str = "json",
        label: str | None = None,
    ) -> pl.Expr:
        label = label or name
        column = self.text(label.replace(".", "__"), path or name, source)
        raw = pl.col(column)
        # Cast once into its own column: the checks below and the typed value all read it.
        self.derived[1][f"{column}__number"] = raw.str.strip_chars().cast(pl.Float64, strict=False)
        value = pl.col(f"{column}__number")
        if required:
            self.check(raw.is_null(), f"{label}: required")
        self.check(
            raw.is_not_null() & (value.is_null() | ~value.is_finite()), f"{label}: must be a finite number"
        )
        if low is not None:
            too_low = value <= low if low_exclusive else value < low
            self.check(too_low, f"{label}: must be {'>' if low_exclusive else '>='} {low:g}")
        if high is not None:
            self.check(value > high, f"{label}: must be <= {high:g}")
        return value

    def string_list(self, name: str) -> None:
        if self.parsed is not None and name in self.parsed.lists:
            self.typed[name] = pl.col(f"__top__{name}")  # lists of strings already
            return
        column = self.text(name)
        # The canonical text and its check get their own columns: the check and the typed value read both.
        canonical, valid = pl.col(f"{column}__json"), pl.col(f"{column}__valid")
        raw, plain = pl.col(column), pl.col(f"{column}__plain")
        # Text that is plainly a valid list of strings already (as the JSON reader writes arrays)
        # is decoded as it is; only the rest is re-written (the costly part) and checked.
        self.derived[1][f"{column}__plain"] = raw.str.contains(PLAIN_STRING_LIST_RE)
        rewritten = pl.when(~plain).then(raw).str.json_path_match("$")
        self.derived[2][f"{column}__json"] = pl.when(plain).then(raw).otherwise(rewritten)
        self.derived[2][f"{column}__valid"] = plain | rewritten.str.contains(STRING_LIST_RE)
        self.check(
            pl.col(f"__{name}").is_not_null() & ~valid.fill_null(False), f"{name}: must be a list of strings"
        )
        self.typed[name] = pl.when(valid).then(canonical).str.json_decode(STRING_LIST)

    def json_object(self, name: str, keys: Sequence[str] = ()) -> str:
        """Validate top-level ``name`` as a JSON object; returns the column holding its text.

        ``keys`` of the object are read in the same pass (for :meth:`text` with ``source`` = the
        returned column). When every value is an object this is one ``read_ndjson`` over them; if
        any is not, the exact route below names the bad rows.
        """
        column = f"__{name}__object"
        values = self.texts[f"__top__{name}"]
        present = values.is_not_null() & (values.str.strip_chars().str.len_bytes() > 0)
        schema: dict[str, pl.DataType] = {key: pl.String() for key in keys} or {"\x00probe": pl.String()}
        parsed = read_objects(values.filter(present), schema) if present.any() else None
        if parsed is not None:
            parsed = with_exact_nested(parsed, values.filter(present))
        nothing = pl.repeat(None, values.len(), dtype=pl.String, eager=True)
        if parsed is not None or not present.any():
            self.objects[column] = values.zip_with(present, nothing).alias(column)
            self.frame = self.frame.with_columns(self.objects[column])
            if parsed is not None and keys:
                spread = spread_rows(parsed.rename({key: f"{column}.{key}" for key in keys}), present)
                self.frame = self.frame.with_columns(spread.get_columns())
                self.read_already.update({(column, key): f"{column}.{key}" for key in keys})
                self.objects.update({name: spread[name] for name in spread.columns})
            return column
        # Computed now (not as a derived column): keys of the object are read from it at level 0.
        canonical = values.str.json_path_match("$")
        is_object = canonical.str.starts_with("{").fill_null(False)
        self.objects[column] = canonical.zip_with(is_object, nothing).alias(column)
        self.frame = self.frame.with_columns(self.objects[column])
        raw = pl.col(self.text(name))
        self.check(raw.is_not_null() & pl.col(column).is_null(), f"{name}: must be an object")
        return column

    def timestamp(self, name: str, *, required: bool = False, now: datetime | None = None) -> None:
        raw = pl.col(self.text(name))
        # Parsed once into its own column: the checks below would each run the parser again.
        self.derived[1][f"__{name}__parsed"] = parse_timestamp(raw)
        value = pl.col(f"__{name}__parsed")
        if required:
            self.check(raw.is_null(), f"{name}: required")
        self.check(raw.is_not_null() & value.is_null(), f"{name}: not an ISO-8601 time or epoch number")
        if now is not None:
            self.check(value < pl.lit(EARLIEST_TIMESTAMP).cast(UTC_MS), f"{name}: before 2000-01-01")
            self.check(
                value > pl.lit(now + MAX_FUTURE).cast(UTC_MS), f"{name}: more than 1 day in the future"
            )
        self.typed[name] = value

    def extra(self, known: Sequence[str], *, nested: Sequence[str] = ()) -> None:
        """Unknown top-level fields as JSON text (skipped, left null, when ``keep_extra`` is off).

        ``nested``: key names of nested objects that are known (an impression's item fields),
        which the caller has made sure are not top-level keys of any record of the chunk."""
        if not self.keep_extra:
            return
        found = extra_fields(self.chunk["json"], set(known), nested=set(nested))
        self.frame = self.frame.with_columns(found.alias("extra"))
        self.typed["extra"] = pl.col("extra")

    # -- result -------------------------------------------------------------------------------------
    def result(self, schema: dict[str, pl.DataType]) -> ValidationResult:
        """Evaluate every check and typed column in one lazy pass, then split valid from rejected."""
        reason = pl.coalesce(pl.col("error"), *self.errors) if self.errors else pl.col("error")
        typed = [
            self.typed.get(name, pl.lit(None)).cast(dtype).alias(f"__typed__{name}")
            for name, dtype in schema.items()
        ]
        frame = self.frame
        for columns in self.derived:
            if columns:
                frame = frame.with_columns(expr.alias(name) for name, expr in columns.items())
        checked = frame.select("input_position", "raw", reason.alias("__reason"), *typed).collect()
        rejects = checked.filter(pl.col("__reason").is_not_null()).select(
            "input_position", "raw", pl.col("__reason").alias("reason")
        )
        records = checked.filter(pl.col("__reason").is_null()).select(
            pl.col(f"__typed__{name}").alias(name) for name in schema
        )
        return ValidationResult(records, rejects)


def _blank(text: pl.Series) -> pl.Series:
    """Where a field's text is missing: null or only white space (what :meth:`Rules.text` drops)."""
    return (text.is_null() | (text.str.strip_chars().str.len_bytes() == 0)).fill_null(True)
