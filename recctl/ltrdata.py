"""Reading learning-to-rank data sets: recctl exports, any Parquet LTR table, and LibSVM text.

:func:`load_ltr` is what ``recctl train --data`` and ``recctl evaluate --data`` read. It returns an
:class:`LtrData`: a dense feature matrix, integer grades and the sizes of the query groups, with the
rows of every group contiguous, ready for ``lightgbm.Dataset(features, grades, group=group_sizes)``
and for :func:`recctl.metrics.ndcg`.

Formats, chosen by the path:

* **Parquet**: a ``.parquet``/``.pq`` file (or any file starting with the Parquet magic bytes), or a
  directory: every ``*.parquet`` in it, sorted by name, read as one table. A recctl export
  directory (``part-*.parquet`` or ``training_set.parquet`` plus ``manifest.json``) is such a
  directory; its manifest's ``feature_names``, when present, are the default features (likewise
  ``<stem>.manifest.json`` beside a single exported ``<stem>.parquet``).
* **LibSVM** text otherwise: ``label [qid:Q] index:value ... [# comment]``. Groups come from the
  ``qid:`` tokens (LETOR / MQ2008 style) or, without them, from a LightGBM query file beside the data
  (``<path>.query``, one group size per line). Feature index ``j`` is column ``j`` (0-based, as
  LightGBM's own loader reads it, so 1-based files get an all-zero column ``f0``); entries a line
  leaves out are 0.0, as in LibSVM (not missing).

Rows of a group must be contiguous for LightGBM; when a data set interleaves them, rows are
regrouped stably: groups in order of first appearance, rows of a group in input order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from recctl.errors import InputError

__all__ = ["NON_FEATURE_COLUMNS", "UNKNOWN_POSITION", "LtrData", "load_ltr"]

NON_FEATURE_COLUMNS = frozenset(
    {
        "query_id",
        "assessment_id",
        "recommendation_id",
        "label",
        "grade",
        "event_time",
        "position",
        "propensity",
        "prefix_propensity",
    }
)
"""Columns of a recctl export that are never model features, even when numeric."""

UNKNOWN_POSITION = -1
""":attr:`LtrData.position` of a row whose position is not known."""

_PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_MAX_GRADE = 31  # LightGBM's default label_gain covers grades 0..30; larger ones are surely a mistake.


@dataclass(frozen=True, eq=False)
class LtrData:
    """A learning-to-rank data set with the rows of each query group contiguous.

    Attributes
    ----------
    features
        float64 matrix, one row per item and one column per feature; NaN where a value is missing
        (Parquet nulls). LibSVM entries a line leaves out are 0.0.
    feature_names
        Name of each column of :attr:`features` (``f0``, ``f1``, ... for LibSVM).
    grades
        int32 relevance grade of each row (0 = not relevant).
    group_sizes
        int64 number of rows of each query group, in row order; sums to the number of rows.
    query_ids
        The id of each *group* (one per entry of :attr:`group_sizes`, not per row; use
        ``np.repeat(query_ids, group_sizes)`` for per-row ids), or None when the data has no ids
        (LibSVM with a ``.query`` file).
    confidence_score
        float64 per row when the data has a ``confidence_score`` column (the old system's ranking
        score, the baseline order); it is also one of the features then.
    event_time
        ``datetime64[ms]`` per row (UTC, naive) when the data has an ``event_time`` column.
    source
        The path the data was read from.
    position
        int64 per row when the data has a ``position`` column: the 0-based slot the item was shown
        in, :data:`UNKNOWN_POSITION` (-1) where the data does not say.
    split_keys
        One key per *group* when the data has an ``assessment_id`` column: groups with the same key
        (the lists served for one assessment) stay on one side of a validation split. None: every
        group is its own key.
    recommendation_ids
        The ``recommendation_id`` of each row, when the data has one (``evaluate --grades`` joins
        judgments on it).
    """

    features: npt.NDArray[np.float64]
    feature_names: list[str]
    grades: npt.NDArray[np.int32]
    group_sizes: npt.NDArray[np.int64]
    query_ids: npt.NDArray[Any] | None
    confidence_score: npt.NDArray[np.float64] | None
    event_time: npt.NDArray[np.datetime64] | None
    source: str
    position: npt.NDArray[np.int64] | None = None
    split_keys: npt.NDArray[Any] | None = None
    recommendation_ids: npt.NDArray[Any] | None = None

    @property
    def num_rows(self) -> int:
        """Number of rows (items)."""
        return int(self.grades.shape[0])

    @property
    def num_groups(self) -> int:
        """Number of query groups."""
        return int(self.group_sizes.shape[0])

    def with_grades(self, grades: npt.NDArray[np.int32]) -> LtrData:
        """The same data with other grades (one per row), e.g. external judgments."""
        if grades.shape != self.grades.shape:
            raise ValueError(f"{grades.shape[0]} grades for {self.num_rows} rows")
        return dataclasses.replace(self, grades=np.asarray(grades, dtype=np.int32))

    def without_features(self, names: Iterable[str]) -> LtrData:
        """The same data without the feature columns ``names`` (names it does not have are ignored)."""
        dropped = set(names)
        keep = [index for index, name in enumerate(self.feature_names) if name not in dropped]
        if len(keep) == len(self.feature_names):
            return self
        return dataclasses.replace(
            self,
            features=np.ascontiguousarray(self.features[:, keep]),
            feature_names=[self.feature_names[index] for index in keep],
        )

    def select_features(self, names: Sequence[str]) -> LtrData:
        """The same data with just the feature columns ``names``, in that order (a model trained
        with some features left out scores these). Raises :class:`InputError` for a name it lacks."""
        if list(names) == self.feature_names:
            return self
        index = {name: column for column, name in enumerate(self.feature_names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise InputError(f"the data lack feature(s) {', '.join(missing[:5])}")
        return dataclasses.replace(
            self,
            features=np.ascontiguousarray(self.features[:, [index[name] for name in names]]),
            feature_names=list(names),
        )

    def subset(self, group_mask: npt.NDArray[np.bool_]) -> LtrData:
        """The groups selected by ``group_mask`` (one flag per group), in their original order;
        ``self`` when every group is selected."""
        if group_mask.all():
            return self
        row_mask = np.repeat(group_mask, self.group_sizes)

        def rows(values: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
            return values[row_mask] if values is not None else None

        def groups(values: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
            return values[group_mask] if values is not None else None

        return dataclasses.replace(
            self,
            features=self.features[row_mask],
            grades=self.grades[row_mask],
            group_sizes=self.group_sizes[group_mask],
            query_ids=groups(self.query_ids),
            confidence_score=rows(self.confidence_score),
            event_time=rows(self.event_time),
            position=rows(self.position),
            split_keys=groups(self.split_keys),
            recommendation_ids=rows(self.recommendation_ids),
        )


def load_ltr(
    path: str | Path,
    *,
    label_col: str = "grade",
    group_col: str = "query_id",
    feature_cols: list[str] | None = None,
    num_features: int | None = None,
) -> LtrData:
    """Read a learning-to-rank data set from Parquet (file or directory) or LibSVM text.

    Parameters
    ----------
    path
        A ``.parquet`` file, a directory of Parquet files (e.g. a recctl export), or a LibSVM text
        file (with ``qid:`` tokens, or with a ``<path>.query`` file of group sizes).
    label_col
        Parquet: the relevance column. With the default ``grade`` absent, ``label`` is used. A float
        column with values in [0, 1] (recctl's ``label``) is replaced by the ``grade`` column when
        there is one; otherwise labels must be non-negative whole numbers. Ignored for LibSVM.
    group_col
        Parquet: the query group column. Ignored for LibSVM.
    feature_cols
        The feature columns, in order. Default: Parquet, the export manifest's ``feature_names`` when
        there is one, else every numeric or boolean column except :data:`NON_FEATURE_COLUMNS` and the
        label and group columns; LibSVM, every column ``f0 .. f<max index>``. For LibSVM, names are
        ``f<index>``.
    num_features
        LibSVM: pad the matrix to this many columns, so a test set is as wide as the training set
        (an index beyond it is an error). Parquet: when given, must equal the number of features.

    Returns
    -------
    LtrData
        The data, rows grouped contiguously (regrouped stably when the input interleaved groups).

    Raises
    ------
    recctl.errors.InputError
        On a missing or unreadable path, a missing column (the message lists the columns there
        are), a non-numeric feature, missing or negative or fractional labels, a missing group id, a
        malformed LibSVM line (with its line number), or a query file that does not match the rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "tiny.txt").write_text("2 qid:1 1:0.5 3:1\\n0 qid:1 2:0.25 # doc b\\n1 qid:2 1:1\\n")
    >>> data = load_ltr(folder / "tiny.txt")
    >>> data.feature_names, data.grades.tolist(), data.group_sizes.tolist()
    (['f0', 'f1', 'f2', 'f3'], [2, 0, 1], [2, 1])
    >>> data.features[0].tolist()
    [0.0, 0.5, 0.0, 1.0]
    """
    location = Path(path)
    if not location.exists():
        raise InputError(f"cannot read learning-to-rank data: {location} does not exist")
    if num_features is not None and (isinstance(num_features, bool) or num_features < 0):
        raise InputError(f"num_features must be a non-negative integer, got {num_features!r}")
    if _data_format(location) == "parquet":
        return _load_parquet(location, label_col, group_col, feature_cols, num_features)
    return _load_libsvm(location, feature_cols, num_features)


def _data_format(location: Path) -> Literal["parquet", "libsvm"]:
    if location.is_dir() or location.suffix.lower() in _PARQUET_SUFFIXES:
        return "parquet"
    try:
        with location.open("rb") as handle:
            magic = handle.read(len(_PARQUET_MAGIC))
    except OSError as exc:
        raise InputError(f"cannot read {location}: {exc.strerror or exc}") from exc
    return "parquet" if magic == _PARQUET_MAGIC else "libsvm"


# --- grouping ---------------------------------------------------------------------------------------


def _grouping(
    keys: pl.Series, what: str
) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Row order that makes groups contiguous (None if they already are), group sizes, group ids."""
    if keys.null_count():
        raise InputError(f"{what} is missing on {keys.null_count()} row(s)")
    runs = keys.rle()
    run_keys = runs.struct.field("value")
    if run_keys.n_unique() == run_keys.len():
        return None, runs.struct.field("len").cast(pl.Int64).to_numpy(), run_keys.to_numpy()
    # Interleaved groups: first-appearance order of groups, input order within each (stable).
    rows_by_key = (
        pl.DataFrame({"key": keys})
        .with_row_index("row")
        .group_by("key", maintain_order=True)
        .agg(pl.col("row"))
    )
    order = rows_by_key["row"].explode().cast(pl.Int64).to_numpy()
    sizes = rows_by_key["row"].list.len().cast(pl.Int64).to_numpy()
    return order, sizes, rows_by_key["key"].to_numpy()


def _grades(values: pl.Series, what: str) -> npt.NDArray[np.int32]:
    """Integer grades of a numeric label column, or an InputError saying what is wrong."""
    if values.null_count():
        raise InputError(f"{what} is missing on {values.null_count()} row(s)")
    if values.dtype == pl.Boolean:
        values = values.cast(pl.Int32)
    if not values.dtype.is_numeric():
        raise InputError(f"{what} must be numeric, not {values.dtype}")
    as_float = values.cast(pl.Float64)
    if values.dtype.is_float() and not bool((as_float == as_float.floor()).all()):
        raise InputError(
            f"{what} has fractional values; LambdaRank needs whole-number relevance grades "
            "(for a recctl export, use its 'grade' column)"
        )
    if values.len() and (as_float.min() < 0 or as_float.max() > _MAX_GRADE):  # type: ignore[operator]
        raise InputError(f"{what} must be whole numbers from 0 to {_MAX_GRADE}")
    return as_float.cast(pl.Int32).to_numpy()


# --- Parquet ----------------------------------------------------------------------------------------


def _parquet_files(location: Path) -> list[Path]:
    """The Parquet files of ``location``: the file itself; an export directory's ``data_files``
    (its manifest's list: files of an earlier export there are not read); else every *.parquet."""
    if not location.is_dir():
        return [location]
    listed = _manifest(location).get("data_files")
    if listed:
        files = [location / str(name) for name in listed]
        missing = [file.name for file in files if not file.is_file()]
        if missing:
            raise InputError(f"{location}: the manifest lists {', '.join(missing)}, which is missing")
        return files
    files = sorted(
        (file for file in location.iterdir() if file.suffix.lower() == ".parquet" and file.is_file()),
        key=lambda file: file.name,
    )
    if not files:
        raise InputError(f"{location} holds no *.parquet files")
    return files


def _manifest(location: Path) -> dict[str, Any]:
    """A recctl export's manifest: ``<dir>/manifest.json`` for an export directory,
    ``<stem>.manifest.json`` beside a single exported ``<stem>.parquet``; {} when there is none."""
    if location.is_dir():
        manifest = location / "manifest.json"
    else:
        manifest = location.with_name(f"{location.stem}.manifest.json")
    if not manifest.is_file():
        return {}
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {manifest}: {exc}") from exc
    return content if isinstance(content, dict) else {}


def _manifest_features(location: Path) -> list[str] | None:
    """``feature_names`` of a recctl export's manifest (:func:`_manifest`), or None."""
    names = _manifest(location).get("feature_names")
    if isinstance(names, list) and names and all(isinstance(name, str) for name in names):
        return names
    return None


def _read_parquet(location: Path) -> pl.DataFrame:
    files = _parquet_files(location)
    try:
        parts = [pl.read_parquet(file) for file in files]
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot read Parquet data {location}: {exc}") from exc


def _column_list(table: pl.DataFrame) -> str:
    return ", ".join(table.columns) or "(none)"


def _label_column(table: pl.DataFrame, label_col: str) -> str:
    if label_col in table.columns:
        chosen = label_col
    elif label_col == "grade" and "label" in table.columns:
        chosen = "label"
    else:
        raise InputError(f"no label column {label_col!r}; the columns are: {_column_list(table)}")
    values = table[chosen]
    if chosen != "grade" and "grade" in table.columns and values.dtype.is_float():
        low, high = values.min(), values.max()
        if low is not None and high is not None and low >= 0.0 and high <= 1.0:  # type: ignore[operator]
            # recctl's label in [0, 1]; its integer grade is what LambdaRank trains on.
            return "grade"
    return chosen


def _default_features(table: pl.DataFrame, excluded: set[str]) -> list[str]:
    return [
        name
        for name, dtype in table.schema.items()
        if name not in excluded and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


def _event_times(values: pl.Series) -> npt.NDArray[np.datetime64]:
    if values.dtype == pl.Date:
        values = values.cast(pl.Datetime("ms"))
    if not isinstance(values.dtype, pl.Datetime):
        raise InputError(f"column 'event_time' must be a timestamp, not {values.dtype}")
    if values.dtype.time_zone is not None:
        values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return values.cast(pl.Datetime("ms")).to_numpy().astype("datetime64[ms]")


def _load_parquet(
    location: Path,
    label_col: str,
    group_col: str,
    feature_cols: list[str] | None,
    num_features: int | None,
) -> LtrData:
    table = _read_parquet(location)
    if table.height == 0:
        raise InputError(f"{location} has no rows")
    names_from = "feature_cols"
    if feature_cols is None:
        feature_cols = _manifest_features(location)
        names_from = "the manifest's feature_names"
    return ltr_from_frame(
        table,
        label_col=label_col,
        group_col=group_col,
        feature_cols=feature_cols,
        num_features=num_features,
        source=str(location),
        names_from=names_from,
    )


def ltr_from_frame(
    table: pl.DataFrame,
    *,
    label_col: str = "grade",
    group_col: str = "query_id",
    feature_cols: list[str] | None = None,
    num_features: int | None = None,
    source: str = "frame",
    names_from: str = "feature_cols",
) -> LtrData:
    """The :class:`LtrData` of a frame in memory (a recctl training set, or any LTR table).

    Column rules as for Parquet in :func:`load_ltr`; ``feature_cols=None`` takes every numeric
    column that is not a known id/label column.
    """
    location = source
    if table.height == 0:
        raise InputError(f"{source} has no rows")
    if group_col not in table.columns:
        raise InputError(f"no group column {group_col!r}; the columns are: {_column_list(table)}")
    label = _label_column(table, label_col)
    order, group_sizes, query_ids = _grouping(table[group_col], f"group column {group_col!r}")
    if order is not None:
        table = table[order]

    source_of_names = names_from
    if feature_cols is None:
        feature_cols = _default_features(table, set(NON_FEATURE_COLUMNS) | {label, label_col, group_col})
        if not feature_cols:
            raise InputError(
                f"{location} has no numeric feature columns; the columns are: {_column_list(table)}"
            )
    missing = [name for name in feature_cols if name not in table.columns]
    if missing:
        raise InputError(
            f"feature column(s) {', '.join(missing)} (from {source_of_names}) not in the data; "
            f"the columns are: {_column_list(table)}"
        )
    not_numeric = [
        f"{name} ({table.schema[name]})"
        for name in feature_cols
        if not (table.schema[name].is_numeric() or table.schema[name] == pl.Boolean)
    ]
    if not_numeric:
        raise InputError(f"feature column(s) must be numeric: {', '.join(not_numeric)}")
    if num_features is not None and num_features != len(feature_cols):
        raise InputError(f"{location} has {len(feature_cols)} features, expected {num_features}")

    features = table.select(pl.col(feature_cols).cast(pl.Float64)).to_numpy(order="c")
    confidence = (
        table["confidence_score"].cast(pl.Float64).to_numpy()
        if "confidence_score" in table.columns and table.schema["confidence_score"].is_numeric()
        else None
    )
    starts = np.concatenate([[0], np.cumsum(group_sizes)[:-1]]).astype(np.int64)
    return LtrData(
        features=np.asarray(features, dtype=np.float64),
        feature_names=list(feature_cols),
        grades=_grades(table[label], f"label column {label!r}"),
        group_sizes=group_sizes,
        query_ids=query_ids,
        confidence_score=confidence,
        event_time=_event_times(table["event_time"]) if "event_time" in table.columns else None,
        source=source,
        position=_positions(table["position"]) if "position" in table.columns else None,
        split_keys=_split_keys(table["assessment_id"], starts) if "assessment_id" in table.columns else None,
        recommendation_ids=table["recommendation_id"].cast(pl.String).to_numpy()
        if "recommendation_id" in table.columns
        else None,
    )


def _positions(values: pl.Series) -> npt.NDArray[np.int64]:
    """Slots as int64, :data:`UNKNOWN_POSITION` where missing; an InputError unless whole and >= 0."""
    if not (values.dtype.is_numeric() or values.dtype == pl.Null):
        raise InputError(f"column 'position' must be numeric, not {values.dtype}")
    as_float = values.cast(pl.Float64).fill_nan(None)
    known = as_float.drop_nulls()
    if known.len() and (bool((known != known.floor()).any()) or known.min() < 0):  # type: ignore[operator]
        raise InputError("column 'position' must hold whole numbers >= 0 (or nothing)")
    return as_float.fill_null(UNKNOWN_POSITION).cast(pl.Int64).to_numpy()


def _split_keys(values: pl.Series, starts: npt.NDArray[np.int64]) -> npt.NDArray[Any] | None:
    """The ``assessment_id`` of each group (its first row's); None when any group lacks one."""
    keys = values.cast(pl.String).gather(starts)
    return None if keys.null_count() else keys.to_numpy()


# --- LibSVM -----------------------------------------------------------------------------------------


def _libsvm_lines(location: Path) -> pl.DataFrame:
    """Non-blank lines without comments: ``line`` (1-based number) and ``body`` (tokens, one space)."""
    try:
        text = location.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {location}: {exc}") from exc
    return (
        pl.DataFrame({"body": pl.Series([text]).str.split("\n").explode()})
        .with_row_index("line", offset=1)
        .with_columns(
            pl.col("body").str.replace(r"#.*$", "").str.replace_all(r"\s+", " ").str.strip_chars(" ")
        )
        .filter(pl.col("body") != "")
    )


def _first_bad(frame: pl.DataFrame, bad: pl.Expr, token: str) -> tuple[int, str] | None:
    rows = frame.filter(bad).select("line", token).head(1)
    return (int(rows["line"][0]), str(rows[token][0])) if rows.height else None


def _query_file_sizes(location: Path, rows: int) -> npt.NDArray[np.int64]:
    query_file = location.with_name(location.name + ".query")
    if not query_file.is_file():
        raise InputError(
            f"{location} has no qid: tokens and there is no query file {query_file.name} beside it"
        )
    try:
        text = query_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {query_file}: {exc}") from exc
    sizes = pl.Series([text]).str.split("\n").explode().str.strip_chars()
    parsed = sizes.filter(sizes != "").cast(pl.Int64, strict=False)
    if parsed.null_count() or (parsed.len() and parsed.min() < 1):  # type: ignore[operator]
        raise InputError(f"{query_file} must hold one positive whole number (a group size) per line")
    if int(parsed.sum()) != rows:
        raise InputError(
            f"{query_file} group sizes add up to {int(parsed.sum())}, but {location} has {rows} rows"
        )
    return parsed.to_numpy()


def _libsvm_columns(feature_cols: list[str], width: int) -> npt.NDArray[np.int64]:
    indices = pl.Series(feature_cols, dtype=pl.String).str.extract(r"^f(\d+)$").cast(pl.Int64)
    if indices.null_count():
        bad = [name for name, index in zip(feature_cols, indices, strict=True) if index is None]
        raise InputError(f"LibSVM features are named f0 .. f{width - 1}; unknown: {', '.join(bad)}")
    return indices.to_numpy()


def _refuse_other_text(location: Path) -> None:
    """An InputError when a file that is not Parquet is plainly not LibSVM either.

    Interaction logs and catalogs (JSON, NDJSON, CSV with a header, gzip, a spreadsheet) are
    records for ``recctl ingest``, not a learning-to-rank set; without this check they would
    fail on "line 1: label ... is not a number" with the whole first line as the label.
    """
    try:
        with location.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InputError(f"cannot read {location}: {exc.strerror or exc}") from exc
    what = None
    if head.startswith(b"\x1f\x8b"):
        what = "gzip-compressed"
    elif head.startswith(b"PK\x03\x04"):
        what = "a zip archive (a spreadsheet?)"
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        # The first line that is not a comment, without its comment (LibSVM allows "# ..." text).
        lines = (line.split(b"#", 1)[0].strip() for line in text.split(b"\n"))
        first_line = next((line for line in lines if line), b"")
        first_field = first_line.split(b",", 1)[0].split(b";", 1)[0].strip()
        if text[:1] in (b"{", b"["):
            what = "JSON (NDJSON or a JSON array)"
        elif (b"," in first_line or b";" in first_line) and not _is_number(first_field):
            what = "CSV with a header line"
    if what is not None:
        raise InputError(
            f"{location} is {what}, not a learning-to-rank set (a recctl export, Parquet, or LibSVM "
            "text); interaction logs and catalogs are read by `recctl ingest`"
        )


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_libsvm(location: Path, feature_cols: list[str] | None, num_features: int | None) -> LtrData:
    _refuse_other_text(location)
    lines = _libsvm_lines(location).with_row_index("row")
    if lines.height == 0:
        raise InputError(f"{location} has no data lines")
    tokens = lines.select("row", "line", pl.col("body").str.split(" ").alias("token"))

    labels = tokens.select(
        "line",
        pl.col("token").list.first(),
        pl.col("token").list.first().cast(pl.Float64, strict=False).alias("number"),
    )
    bad_label = _first_bad(labels, pl.col("number").is_null(), "token")
    if bad_label is not None:
        raise InputError(f"{location}, line {bad_label[0]}: label {_shorten(bad_label[1])!r} is not a number")
    grades = _grades(labels["number"], f"{location} labels")

    entries = (
        tokens.with_columns(pl.col("token").list.slice(1))
        .explode("token")
        .filter(pl.col("token").is_not_null())
        .with_columns(
            pl.col("token").str.starts_with("qid:").alias("is_qid"),
            # splitn keeps any second ':' in the value, which then fails to parse as a number.
            pl.col("token").str.splitn(":", 2).struct.rename_fields(["key", "value"]).alias("pair"),
        )
        .unnest("pair")
    )
    qids = entries.filter("is_qid").select("row", "line", qid=pl.col("value"))
    pairs = entries.filter(~pl.col("is_qid")).with_columns(
        pl.col("key").cast(pl.Int64, strict=False).alias("index"),
        pl.col("value").cast(pl.Float64, strict=False).alias("number"),
    )
    bad_pair = _first_bad(
        pairs,
        pl.col("index").is_null() | (pl.col("index") < 0) | pl.col("number").is_null(),
        "token",
    )
    if bad_pair is not None:
        raise InputError(f"{location}, line {bad_pair[0]}: {_shorten(bad_pair[1])!r} is not index:value")

    rows = lines.height
    width = int(pairs["index"].max()) + 1 if pairs.height else 0  # type: ignore[arg-type]
    if num_features is not None:
        if width > num_features:
            raise InputError(
                f"{location} has feature index {width - 1}, beyond the {num_features} features expected"
            )
        width = num_features
    features = np.zeros((rows, width), dtype=np.float64)
    features[pairs["row"].to_numpy(), pairs["index"].to_numpy()] = pairs["number"].to_numpy()

    if qids.height:
        qid_count = qids.group_by("row").len()
        bad_qid = _first_bad(
            lines.join(qid_count, on="row", how="left"), pl.col("len").is_null() | (pl.col("len") > 1), "body"
        )
        if bad_qid is not None:
            raise InputError(f"{location}, line {bad_qid[0]}: every line needs exactly one qid: token")
        qid_values = qids.sort("row")["qid"]
        as_int = qid_values.cast(pl.Int64, strict=False)
        order, group_sizes, query_ids = _grouping(
            as_int if not as_int.null_count() else qid_values, f"{location} qid"
        )
        if order is not None:
            features, grades = features[order], grades[order]
    else:
        group_sizes, query_ids = _query_file_sizes(location, rows), None

    feature_names = [f"f{index}" for index in range(width)]
    if feature_cols is not None:
        columns = _libsvm_columns(feature_cols, width)
        padded = np.zeros((rows, max(width, int(columns.max()) + 1 if columns.size else 0)))
        padded[:, :width] = features
        features, feature_names = np.ascontiguousarray(padded[:, columns]), list(feature_cols)
    return LtrData(
        features=features,
        feature_names=feature_names,
        grades=grades,
        group_sizes=group_sizes,
        query_ids=query_ids,
        confidence_score=None,
        event_time=None,
        source=str(location),
    )
