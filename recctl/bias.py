"""Position bias: how likely a user is to examine each slot of a list, relative to the first.

recctl reads clicks through the position-based click model (PBM): a user clicks item ``d`` shown
at slot ``k`` when they examine the slot and find the item relevant, independently,

    P(click | d at k) = theta_k * gamma_d,

so clicks confound relevance (``gamma``) with where an item was shown (``theta``). This module
estimates ``theta_k / theta_0`` (the *examination* of slot ``k``, 1.0 at slot 0) from the served
lists (impressions) and the clicks linked to them, in two ways:

- **direct**, for lists a stochastic policy served (Plackett-Luce, epsilon-greedy, ...): the
  randomisation itself separates position from relevance, and the logged marginal
  ``propensity`` of each placement, when there is one, sharpens the estimate (see
  :func:`direct_estimate`);
- **regression EM** (Wang et al., "Position bias estimation for unbiased learning to rank in
  personal search", WSDM 2018) for any other log: expectation-maximisation over the PBM, with
  ``gamma`` a logistic regression on item features, or one value per recommendation when there are
  none (see :func:`em_estimate`).

On a log of one deterministic order every recommendation sits in one slot, and no estimator can
tell a slot that is looked at less from items that are liked less: :func:`estimate_bias` then
refuses (:class:`~recctl.errors.InsufficientDataError`) instead of returning a confident wrong
curve. Intervals are percentile bootstrap 95% intervals over assessments, the independent unit.

The library takes frames and returns frames or a :class:`BiasCurve`; it never reads a store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from recctl import defaults
from recctl.errors import InputError, InsufficientDataError
from recctl.records.schema import CLICK_TYPES

if TYPE_CHECKING:
    import numpy.typing as npt
    import polars as pl

Method = Literal["auto", "direct", "regression-em"]
METHODS: tuple[str, ...] = ("auto", "direct", "regression-em")

DETERMINISTIC = "deterministic"

LOG_COLUMNS: tuple[str, ...] = (
    "request_id",
    "assessment_id",
    "user_id",
    "recommendation_id",
    "position",
    "propensity",
    "prefix_propensity",
    "policy",
    "clicked",
)
"""The columns of :func:`click_log`: one row per item shown."""

DIRECT_MIN_CLICKS = 30
"""The direct estimate mixes in one of its two estimates at a slot only when that estimate rests
on at least this many clicks there, and its curve stops at the first slot where neither does:
a ratio of a few clicks has a spread its bootstrap cannot see."""

RANDOMISED_SHARE = 0.5
"""``auto`` takes a log as randomised when more than this share of its shown items come from a
non-deterministic policy."""

EM_MAX_ITERATIONS = 100
EM_TOLERANCE = 1e-5
"""EM stops when no slot's examination moves by more than this, or after the iterations above."""
EM_BOOTSTRAP_TOLERANCE = 1e-4
"""The same for the bootstrap's refits, which start at the full-data solution."""
EM_RESAMPLES = (50, 200)
"""Regression EM refits the model on every bootstrap resample, so it draws fewer: at most 200,
and fewer on large logs (about :data:`EM_BOOTSTRAP_CELLS` (resample, cell) pairs), but at least 50."""
EM_BOOTSTRAP_CELLS = 20_000_000
EM_FEW_SHOWS = 20
"""Below this many shows per recommendation, regression EM's note says its estimate is biased."""

_BOOTSTRAP_CELLS = 4_000_000
"""Resamples are processed in blocks of about this many (resample, value) cells, bounding memory."""


class BiasCurve:
    """Examination per slot relative to slot 0, with bootstrap 95% intervals.

    ``positions`` are consecutive from 0; ``examination[0]`` is 1.0. ``impressions`` counts the
    items shown at each slot in the data the curve was estimated from.
    """

    def __init__(
        self,
        *,
        method: str,
        positions: npt.ArrayLike,
        examination: npt.ArrayLike,
        low: npt.ArrayLike,
        high: npt.ArrayLike,
        impressions: npt.ArrayLike,
        lists: int = 0,
        clicks: int = 0,
        confounded: bool = False,
        note: str | None = None,
        resamples: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.positions = np.asarray(positions, dtype=np.int64)
        self.examination = np.asarray(examination, dtype=np.float64)
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.impressions = np.asarray(impressions, dtype=np.int64)
        if self.positions.size == 0 or not np.array_equal(self.positions, np.arange(self.positions.size)):
            raise ValueError("a bias curve needs consecutive positions 0, 1, 2, ...")
        for name in ("examination", "low", "high", "impressions"):
            if getattr(self, name).shape != self.positions.shape:
                raise ValueError(f"a bias curve needs one {name} value per position")
        self.lists = int(lists)
        self.clicks = int(clicks)
        self.confounded = bool(confounded)
        self.note = note
        self.resamples = int(resamples)
        self.extra = dict(extra or {})

    def examination_at(self, positions: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The examination at each of ``positions`` (ints >= 0); a position beyond the curve takes
        the last slot's value."""
        where = np.asarray(positions, dtype=np.int64)
        if where.size and where.min() < 0:
            raise ValueError("positions must be >= 0")
        return self.examination[np.minimum(where, self.positions.size - 1)]

    def as_json(self) -> dict[str, Any]:
        """The curve as the JSON document ``recctl bias --out`` writes and :meth:`load` reads."""
        return {
            "method": self.method,
            "positions": [
                {
                    "position": int(position),
                    "examination": _finite(examination),
                    "low": _finite(low),
                    "high": _finite(high),
                    "impressions": int(impressions),
                }
                for position, examination, low, high, impressions in zip(
                    self.positions, self.examination, self.low, self.high, self.impressions, strict=True
                )
            ],
            "lists": self.lists,
            "clicks": self.clicks,
            "confounded": self.confounded,
            "note": self.note,
            "resamples": self.resamples,
            **self.extra,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> BiasCurve:
        """A curve from :meth:`as_json`'s document; :class:`~recctl.errors.InputError` when it is not one."""
        try:
            rows = sorted(document["positions"], key=lambda row: int(row["position"]))
            known = {"method", "positions", "lists", "clicks", "confounded", "note", "resamples"}
            return cls(
                method=str(document["method"]),
                positions=[int(row["position"]) for row in rows],
                examination=[float(row["examination"]) for row in rows],
                low=[_number(row.get("low")) for row in rows],
                high=[_number(row.get("high")) for row in rows],
                impressions=[int(row.get("impressions") or 0) for row in rows],
                lists=int(document.get("lists") or 0),
                clicks=int(document.get("clicks") or 0),
                confounded=bool(document.get("confounded", False)),
                note=document.get("note"),
                resamples=int(document.get("resamples") or 0),
                extra={key: value for key, value in document.items() if key not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a bias curve ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> BiasCurve:
        """The curve saved at ``path`` (by ``recctl bias --out``)."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise InputError(f"{path} is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise InputError(f"{path} is not a bias curve (a JSON object with positions)")
        try:
            return cls.from_json(document)
        except InputError as exc:
            raise InputError(f"{path} is {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write :meth:`as_json` to ``path`` atomically."""
        from recctl.atomic import write_text_atomically

        write_text_atomically(Path(path), json.dumps(self.as_json(), indent=2) + "\n")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


# -- the click log ---------------------------------------------------------------------------------
def click_log(impressions: pl.DataFrame, linked_interactions: pl.DataFrame) -> pl.DataFrame:
    """One row per item shown, with ``clicked``: whether a click-strength interaction was linked to it.

    Parameters
    ----------
    impressions
        Stored impression rows (one per item shown): ``request_id``, ``assessment_id``,
        ``recommendation_id``, ``position``, and (optional) ``user_id``, ``propensity``,
        ``prefix_propensity``, ``policy`` (null or absent: ``deterministic``).
    linked_interactions
        Interactions with ``request_id`` set to the list each was linked to (null: unlinked), as
        :func:`recctl.attribution.link_interactions` returns them, and ``interaction_type``.

    Returns
    -------
    polars.DataFrame
        :data:`LOG_COLUMNS`, rows in the order of ``impressions``. An item counts as clicked when an
        interaction of a type in :data:`CLICK_TYPES` links to its (``request_id``,
        ``recommendation_id``); views and dismissals do not count.
    """
    import polars as pl

    missing = [
        c
        for c in ("request_id", "assessment_id", "recommendation_id", "position")
        if c not in impressions.columns
    ]
    if missing:
        raise InputError(f"impressions lack column(s) {', '.join(missing)}")
    optional = {
        "user_id": pl.String(),
        "propensity": pl.Float64(),
        "prefix_propensity": pl.Float64(),
        "policy": pl.String(),
    }
    shown = impressions.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in optional.items()
        if name not in impressions.columns
    ).select(
        pl.col("request_id").cast(pl.String),
        pl.col("assessment_id").cast(pl.String),
        pl.col("user_id").cast(pl.String),
        pl.col("recommendation_id").cast(pl.String),
        pl.col("position").cast(pl.Int64),
        pl.col("propensity").cast(pl.Float64),
        pl.col("prefix_propensity").cast(pl.Float64),
        pl.col("policy").cast(pl.String).fill_null(DETERMINISTIC),
    )
    clicks = (
        linked_interactions.filter(
            pl.col("request_id").is_not_null()
            & pl.col("interaction_type").str.to_lowercase().str.strip_chars().is_in(CLICK_TYPES)
        )
        .select(pl.col("request_id").cast(pl.String), pl.col("recommendation_id").cast(pl.String))
        .unique()
        .with_columns(pl.lit(True).alias("clicked"))
    )
    return shown.join(
        clicks, on=["request_id", "recommendation_id"], how="left", maintain_order="left"
    ).with_columns(pl.col("clicked").fill_null(False))


# -- estimation -------------------------------------------------------------------------------------
def is_randomised(log: pl.DataFrame) -> bool:
    """Whether most shown items (more than :data:`RANDOMISED_SHARE`) were placed by a
    non-deterministic policy."""
    import polars as pl

    if log.height == 0:
        return False
    random_rows = log.select((pl.col("policy") != DETERMINISTIC).sum()).item()
    return bool(random_rows > RANDOMISED_SHARE * log.height)


def estimate_bias(
    log: pl.DataFrame,
    *,
    method: Method = "auto",
    max_position: int | None = None,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    features: list[str] | None = None,
) -> BiasCurve:
    """The examination curve of ``log`` (:func:`click_log`'s rows) with bootstrap 95% intervals.

    Parameters
    ----------
    log
        One row per item shown: :data:`LOG_COLUMNS`, plus any ``features`` columns.
    method
        ``direct`` (randomised logs, :func:`direct_estimate`), ``regression-em``
        (:func:`em_estimate`), or ``auto``: direct when :func:`is_randomised`, else regression EM.
    max_position
        The last slot to estimate (default: the last slot in the log).
    resamples
        Bootstrap resamples of the assessments, for the intervals (at least 1).
    seed
        Seed of the bootstrap.
    features
        Numeric columns of ``log`` describing each item, for regression EM's relevance model
        (default: one relevance per recommendation).

    Raises
    ------
    InsufficientDataError
        No shown items, no clicks, no slot beyond the first, ``direct`` on a log without
        randomised lists, or a log where position is confounded with relevance (every
        recommendation always shown at the same slot).
    """
    import polars as pl

    if method not in METHODS:
        raise InputError(f"unknown bias method {method!r} (choose from {', '.join(METHODS)})")
    if isinstance(resamples, bool) or resamples < 1:
        raise InputError(f"resamples must be at least 1, got {resamples}")
    if max_position is not None and max_position < 1:
        raise InputError(f"max_position must be at least 1, got {max_position}")
    missing = [column for column in (*LOG_COLUMNS, *(features or [])) if column not in log.columns]
    if missing:
        raise InputError(f"the click log lacks column(s) {', '.join(missing)}")
    log = log.filter(pl.col("position").is_not_null() & (pl.col("position") >= 0))
    if log.height == 0:
        raise InsufficientDataError("no shown items with a position in the window: ingest impressions first")
    if not log["clicked"].any():
        raise InsufficientDataError(
            f"none of the {log.height:,} shown items was clicked: no clicks, no examination to estimate"
        )
    chosen = ("direct" if is_randomised(log) else "regression-em") if method == "auto" else method
    if chosen == "direct":
        return direct_estimate(log, max_position=max_position, resamples=resamples, seed=seed)
    return em_estimate(log, max_position=max_position, resamples=resamples, seed=seed, features=features)


def direct_estimate(
    log: pl.DataFrame,
    *,
    max_position: int | None = None,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> BiasCurve:
    """The examination curve from randomised lists, by two randomisation estimates combined.

    A stochastic policy places candidate ``d`` of list ``q`` at slot ``k`` by chance, with a
    logged marginal probability ``p_q(d, k)`` (the ``propensity``), whatever the user will do.

    **Inverse propensity (all clicks).** The weighted click count at slot ``k`` of a list,
    ``S_q(k) = clicked(item at k) / p_q(item at k, k)``, has expectation
    ``sum_d p_q(d, k) theta_k gamma_d / p_q(d, k) = theta_k G_q``, where ``G_q`` sums the relevance
    of the list's candidates and does not depend on ``k``. Over the lists ``Q_k`` long enough to
    have slot ``k`` (the same candidate pools at both slots),

        theta_k / theta_0 = sum_{q in Q_k} S_q(k) / sum_{q in Q_k} S_q(0).

    It needs every candidate to have a positive probability at every slot (true of Plackett-Luce
    and epsilon-greedy); its variance grows where propensities are small.

    **Matched click rates (repeated exposures).** The click rate of ``d`` over the lists that
    showed it at ``k``, ``r(d, k) = clicks(d, k) / shown(d, k)``, estimates ``theta_k gamma_d``
    without bias (the placement was chance), so over the recommendations shown at both slots

        theta_k / theta_0 = sum_d w_dk r(d, k) / sum_d w_dk r(d, 0),
        w_dk = shown(d, k) shown(d, 0) / (shown(d, k) + shown(d, 0)),

    with weights that depend only on where the policy put things. It ignores propensities and
    is precise when each recommendation was served many times, useless when few were.

    Both are ratios of per-assessment sums, so one bootstrap over assessments (the same
    resamples for both) gives their variances and covariance at each slot, and the curve is
    their minimum-variance combination ``w * ipw + (1 - w) * matched`` (``w`` in [0, 1], reported
    as ``ipw_weight``); the interval is the percentile interval of the combined resamples. Only
    lists from a non-deterministic policy are used, and the inverse-propensity sums only those
    whose items all carry a propensity (without any, the curve is the matched estimate alone).
    """
    import polars as pl

    randomised = log.filter(pl.col("policy") != DETERMINISTIC)
    if randomised.height == 0:
        raise InsufficientDataError(
            "the direct estimate needs lists served by a randomised policy, and there are none; "
            "log randomised lists, or use the regression-em method"
        )
    slots = _largest(randomised["position"]) + 1
    last = slots - 1 if max_position is None else min(max_position, slots - 1)
    if last < 1:
        raise InsufficientDataError("every list has one slot: no position to compare with the first")
    width = last + 1
    rows = randomised.with_columns(
        pl.col("assessment_id").fill_null(""),
        length=pl.col("position").max().over("request_id") + 1,
        weighted=pl.col("clicked").cast(pl.Float64) / pl.col("propensity"),
        # the inverse-propensity sums need every item of the list to carry its propensity
        with_propensities=(pl.col("propensity").is_not_null() & (pl.col("propensity") > 0))
        .all()
        .over("request_id"),
    ).with_columns(group=pl.col("assessment_id").rank("dense").cast(pl.Int64) - 1)
    groups = _largest(rows["group"]) + 1
    with_propensities = rows.filter("with_propensities")
    ipw = _ipw_sums(with_propensities, groups, width)
    *matched_sums, matched_clicks = _matched_sums(rows.filter(pl.col("position") <= last), groups, width)
    matched = (matched_sums[0], matched_sums[1])
    inside = with_propensities.filter(pl.col("position") <= last)
    ipw_clicks = np.bincount(
        inside["position"].to_numpy(), weights=inside["clicked"].cast(pl.Float64).to_numpy(), minlength=width
    )
    if ipw[1][:, 0].sum() <= 0 and matched[1][:, 0].sum() <= 0:
        raise InsufficientDataError(
            "no clicks at the first slot of the randomised lists: nothing to compare with"
        )
    estimates = [
        _ratio(numerator.sum(axis=0), denominator.sum(axis=0)) for numerator, denominator in (ipw, matched)
    ]
    draws = [_bootstrap_ratio(*sums, resamples=resamples, seed=seed) for sums in (ipw, matched)]
    weight = _combination_weights(*draws)
    # A ratio resting on a handful of clicks has a bootstrap variance near zero (no clicks, no
    # spread) that would win the mix: such an estimate only stands in when the other has none.
    ipw_rests, matched_rests = ipw_clicks >= DIRECT_MIN_CLICKS, matched_clicks >= DIRECT_MIN_CLICKS
    weight[ipw_rests & ~matched_rests & np.isfinite(estimates[0])] = 1.0
    weight[~ipw_rests & matched_rests & np.isfinite(estimates[1])] = 0.0
    examination = _combine(weight, *estimates)
    replicates = _combine(weight, *draws)
    resting = ipw_rests | matched_rests
    resting[0] = True
    usable = _identified_prefix(np.isfinite(examination) & resting)
    note = None
    if usable < width:
        note = (
            f"fewer than {DIRECT_MIN_CLICKS} clicks to compare at slot {usable}: "
            f"the curve stops at slot {usable - 1}"
        )
    low, high = _percentiles(replicates[:, :usable])
    shown = np.bincount(rows.filter(pl.col("position") <= last)["position"].to_numpy(), minlength=width)
    return BiasCurve(
        method="direct",
        positions=np.arange(usable),
        examination=examination[:usable],
        low=low,
        high=high,
        impressions=shown[:usable],
        lists=int(rows["request_id"].n_unique()),
        clicks=int(rows["clicked"].sum()),
        confounded=False,
        note=note,
        resamples=resamples,
        extra={
            "ipw_weight": [round(float(value), 4) for value in weight[:usable]],
            "lists_without_propensities": int(
                rows.filter(~pl.col("with_propensities"))["request_id"].n_unique()
            ),
            "deterministic_lists_left_out": int(
                log.filter(pl.col("policy") == DETERMINISTIC)["request_id"].n_unique()
            ),
        },
    )


def _ipw_sums(
    rows: pl.DataFrame, groups: int, width: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per assessment and slot: the sum of ``S_q(k)``, and the sum of ``S_q(0)`` over the lists
    that reach slot ``k`` (each list's ``S_q(0)`` added at its last slot, then summed from the end)."""
    import polars as pl

    group, position, weighted = (rows[name].to_numpy() for name in ("group", "position", "weighted"))
    inside = position < width
    numerator = _group_sums(group[inside] * width + position[inside], weighted[inside], groups, width)
    first = rows.filter(pl.col("position") == 0)
    reach = np.minimum(first["length"].to_numpy(), width) - 1
    denominator = _group_sums(
        first["group"].to_numpy() * width + reach, first["weighted"].to_numpy(), groups, width
    )
    return numerator, np.cumsum(denominator[:, ::-1], axis=1)[:, ::-1]


def _matched_sums(
    rows: pl.DataFrame, groups: int, width: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per assessment and slot: the weighted click rates at slot ``k`` and at slot 0 of the
    recommendations shown at both; and per slot, the fewer of the clicks at ``k`` and at 0 that
    those rates rest on."""
    import polars as pl

    item_key = ["group", "recommendation_id"]
    cells = (
        rows.group_by([*item_key, "position"])
        .agg(shown=pl.len(), clicks=pl.col("clicked").sum())
        .sort([*item_key, "position"])  # a fixed summation order: the same bits on every run
    )
    at_first = cells.filter(pl.col("position") == 0).select(
        *item_key, shown_first="shown", clicks_first="clicks"
    )
    pairs = (
        cells.join(at_first, on=item_key, how="inner", maintain_order="left")
        .with_columns(
            weight=pl.col("shown") * pl.col("shown_first") / (pl.col("shown") + pl.col("shown_first"))
        )
        .with_columns(
            numerator=pl.col("weight") * pl.col("clicks") / pl.col("shown"),
            denominator=pl.col("weight") * pl.col("clicks_first") / pl.col("shown_first"),
        )
    )
    index = pairs["group"].to_numpy() * width + pairs["position"].to_numpy()
    position = pairs["position"].to_numpy()
    clicks = np.minimum(
        np.bincount(position, weights=pairs["clicks"].to_numpy(), minlength=width),
        np.bincount(position, weights=pairs["clicks_first"].to_numpy(), minlength=width),
    )
    return (
        _group_sums(index, pairs["numerator"].to_numpy(), groups, width),
        _group_sums(index, pairs["denominator"].to_numpy(), groups, width),
        clicks,
    )


def _ratio(
    numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _combination_weights(
    first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per slot, the weight ``w`` in [0, 1] of ``first`` that minimises the variance of
    ``w * first + (1 - w) * second`` over the resamples (rows); 1 or 0 where only one estimate
    is finite in every resample, 0.5 where the variances say nothing."""
    weights = np.full(first.shape[1], 0.5)
    for_first = np.isfinite(first).all(axis=0)
    for_second = np.isfinite(second).all(axis=0)
    both = for_first & for_second
    if both.any() and first.shape[0] > 1:
        a, b = first[:, both], second[:, both]
        a, b = a - a.mean(axis=0), b - b.mean(axis=0)
        va, vb, cov = (a * a).mean(axis=0), (b * b).mean(axis=0), (a * b).mean(axis=0)
        spread = va + vb - 2 * cov
        with np.errstate(divide="ignore", invalid="ignore"):
            weights[both] = np.clip(np.where(spread > 0, (vb - cov) / spread, 0.5), 0.0, 1.0)
    weights[for_first & ~for_second] = 1.0
    weights[~for_first & for_second] = 0.0
    return weights


def _combine(
    weight: npt.NDArray[np.float64], first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``weight * first + (1 - weight) * second``, where a zero weight ignores a non-finite value."""
    with np.errstate(invalid="ignore"):
        mixed = weight * np.where(weight > 0, first, 0.0) + (1 - weight) * np.where(weight < 1, second, 0.0)
    return np.asarray(mixed, dtype=np.float64)


def _group_sums(
    index: npt.NDArray[np.int64], values: npt.NDArray[np.float64], groups: int, width: int
) -> npt.NDArray[np.float64]:
    """``values`` summed into a groups x width matrix at ``index`` (= group * width + slot)."""
    sums = np.bincount(index, weights=values, minlength=groups * width)
    return np.asarray(sums, dtype=np.float64).reshape(groups, width)


def _largest(values: pl.Series) -> int:
    """The largest value of an integer column (which the caller knows is not empty)."""
    largest = values.max()
    if not isinstance(largest, int):
        raise ValueError("an empty or non-integer column")
    return largest


def _identified_prefix(known: npt.NDArray[np.bool_]) -> int:
    """How many leading slots are ``known`` (at least 1: slot 0 is always 1.0)."""
    gaps = np.flatnonzero(~known)
    return int(gaps[0]) if gaps.size else int(known.size)


def _bootstrap_ratio(
    numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64], *, resamples: int, seed: int
) -> npt.NDArray[np.float64]:
    """``resamples`` x slots ratios sum(numerator) / sum(denominator) over resampled rows (assessments)."""
    rng = np.random.default_rng(seed)
    groups = numerator.shape[0]
    block = max(1, _BOOTSTRAP_CELLS // max(groups, 1))
    replicates = np.empty((resamples, numerator.shape[1]))
    uniform = np.full(groups, 1.0 / groups)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        counts = rng.multinomial(groups, uniform, size=stop - start).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates[start:stop] = (counts @ numerator) / (counts @ denominator)
    return replicates


def _percentiles(
    replicates: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The 2.5% and 97.5% quantiles per column; a replicate that could not estimate a slot (NaN or
    infinite) counts as an unbounded value, so such resamples widen the interval instead of vanishing."""
    values = np.where(np.isfinite(replicates), replicates, np.inf)
    with np.errstate(invalid="ignore"):  # interpolating between two unbounded values
        low, high = np.quantile(values, [0.025, 0.975], axis=0)
    return np.nan_to_num(low, nan=np.inf), np.nan_to_num(high, nan=np.inf)


# -- regression EM ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cells:
    """The log aggregated to (recommendation, slot) cells: what the PBM likelihood depends on."""

    item: npt.NDArray[np.int64]
    position: npt.NDArray[np.int64]
    shown: npt.NDArray[np.float64]
    clicks: npt.NDArray[np.float64]
    group: npt.NDArray[np.int64]  # the assessment of the cell, for the bootstrap
    items: int
    groups: int
    width: int


def em_estimate(
    log: pl.DataFrame,
    *,
    max_position: int | None = None,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    features: list[str] | None = None,
) -> BiasCurve:
    """The examination curve by regression EM over the position-based click model.

    Each shown item is examined with probability ``theta_k`` (its slot) and relevant with
    probability ``gamma`` (the item), independently; a click needs both. EM alternates:

    - E: for an unclicked item, P(examined, not relevant) = theta (1 - gamma) / (1 - theta gamma)
      and P(not examined, relevant) = (1 - theta) gamma / (1 - theta gamma); a click is both.
    - M: ``theta_k`` = the mean posterior examination of the items shown at slot ``k``; ``gamma``
      = the mean posterior relevance of each recommendation (no ``features``), or a logistic
      regression fitted to those posteriors on the ``features`` columns (Wang et al., WSDM 2018,
      with a logistic model in place of their gradient-boosted trees).

    The log is first aggregated to (recommendation, slot) cells, so an iteration costs one pass
    over the cells. ``theta_k / theta_0`` is identified only where recommendations were shown at
    more than one slot: slots are linked when some recommendation appeared at both, and only the
    slots linked (through any chain) to slot 0 are estimated. When none is, position is
    confounded with relevance and this raises :class:`~recctl.errors.InsufficientDataError`.
    Without ``features``, a recommendation shown at one slot only does not inform the curve (its
    relevance absorbs its clicks at any curve), so it is left out of the fit.

    Intervals: each bootstrap resample of the assessments re-runs EM from the full-data solution
    (all resamples at once, one array per block; accelerated, see :func:`_em`). With one
    relevance per recommendation, EM is biased when each was shown only a few times (one
    parameter per item, estimated from a handful of clicks), and its bootstrap cannot see that
    bias; so the interval is widened to also cover a second estimate that has no such bias: the
    product of neighbour-slot ratios of matched click rates (:func:`direct_estimate`'s ratio,
    slot ``j`` against slot ``j - 1``). The same widening applies to every log that was not
    randomised, and such a log is marked ``confounded``: its curve rests on why recommendations
    moved, which the log does not record.
    """
    import polars as pl

    log = log.with_columns(pl.col("assessment_id").cast(pl.String).fill_null(""))
    slots = _largest(log["position"]) + 1
    last = slots - 1 if max_position is None else min(max_position, slots - 1)
    if last < 1:
        raise InsufficientDataError("every list has one slot: no position to compare with the first")
    rows = log.filter(pl.col("position") <= last)
    item_key = ["assessment_id", "recommendation_id"]
    aggregated = (
        rows.group_by([*item_key, "position"])
        .agg(
            shown=pl.len(),
            clicks=pl.col("clicked").sum(),
            **{name: pl.col(name).mean() for name in features or []},
        )
        .with_columns(slots_of_item=pl.len().over(item_key))
        .sort([*item_key, "position"])
    )
    linked = _linked_to_first(aggregated, width=last + 1)
    width = _identified_prefix(linked)
    moved = aggregated.filter(pl.col("slots_of_item") > 1)
    moved_items = moved.select(item_key).n_unique()
    all_items = aggregated.select(item_key).n_unique()
    randomised = is_randomised(log)
    if width < 2:
        raise InsufficientDataError(
            "position is confounded with relevance: every recommendation was shown at one slot only, so "
            "clicks cannot tell a slot that is looked at less from items that are liked less; "
            "log randomised lists (a stochastic policy that records propensities) and run again"
        )
    fitted = aggregated.filter(pl.col("position") < width)
    if not features:
        fitted = fitted.filter(pl.col("slots_of_item") > 1)
    cells = _cells(fitted, item_key, width)
    design = _design(fitted, features) if features else None
    theta, gamma = _em(cells, design)
    examination = theta / theta[0]
    fewest, most = EM_RESAMPLES
    resamples = min(resamples, max(fewest, min(most, EM_BOOTSTRAP_CELLS // max(cells.item.size, 1))))
    replicates = _bootstrap_em(cells, design, theta, gamma, resamples=resamples, seed=seed)
    low, high = _percentiles(replicates)
    if not features or not randomised:  # see the docstring: intervals that stay honest
        chained_low, chained_high = _percentiles(
            _chained_ratios(fitted, item_key, width, resamples=max(resamples, 200), seed=seed)
        )
        low, high = np.minimum(low, chained_low), np.maximum(high, chained_high)
    notes = []
    if width < last + 1:
        notes.append(
            f"slot {width} is not linked to slot 0 by any recommendation shown at both: "
            f"the curve stops at slot {width - 1}"
        )
    shows_per_item = float(cells.shown.sum()) / max(cells.items, 1)
    if not features and shows_per_item < EM_FEW_SHOWS:
        notes.append(
            f"recommendations were shown {shows_per_item:.1f} times each on average: EM's estimate is "
            "biased on so few, and its interval is widened to the matched click-rate estimate"
        )
    if not randomised:
        notes.append(
            f"the lists were not randomised: the curve rests on the {moved_items:,} of {all_items:,} "
            "recommendations shown at more than one slot, and assumes they moved for reasons unrelated "
            "to their relevance"
        )
    shown = np.bincount(rows["position"].to_numpy(), minlength=last + 1)[:width]
    return BiasCurve(
        method="regression-em",
        positions=np.arange(width),
        examination=examination,
        low=low,
        high=high,
        impressions=shown,
        lists=int(rows["request_id"].n_unique()),
        clicks=int(rows["clicked"].sum()),
        confounded=not randomised,
        note="; ".join(notes) or None,
        resamples=resamples,
        extra={"recommendations_moved": moved_items, "recommendations": all_items},
    )


def _chained_ratios(
    cells: pl.DataFrame, item_key: list[str], width: int, *, resamples: int, seed: int
) -> npt.NDArray[np.float64]:
    """Bootstrap replicates (resamples x slots) of the examination as a product of neighbour
    ratios: ``theta_j / theta_{j-1}`` is :func:`direct_estimate`'s matched ratio over the
    recommendations shown at both slots ``j - 1`` and ``j``. A slot whose chain breaks (no
    recommendation at both neighbours, or no clicks) is NaN."""
    import polars as pl

    below = cells.select(
        *item_key, (pl.col("position") + 1).alias("position"), shown_before="shown", clicks_before="clicks"
    )
    pairs = (
        cells.join(below, on=[*item_key, "position"], how="inner", maintain_order="left")
        .with_columns(
            weight=pl.col("shown") * pl.col("shown_before") / (pl.col("shown") + pl.col("shown_before")),
            group=pl.col("assessment_id").rank("dense").cast(pl.Int64) - 1,
        )
        .with_columns(
            numerator=pl.col("weight") * pl.col("clicks") / pl.col("shown"),
            denominator=pl.col("weight") * pl.col("clicks_before") / pl.col("shown_before"),
        )
    )
    if pairs.height == 0:
        return np.full((resamples, width), np.nan)
    groups = _largest(pairs["group"]) + 1
    index = pairs["group"].to_numpy() * width + pairs["position"].to_numpy()
    numerator, denominator = (
        _group_sums(index, pairs[name].to_numpy(), groups, width) for name in ("numerator", "denominator")
    )
    numerator[:, 0] = denominator[:, 0] = 1.0  # slot 0 is the reference
    ratios = _bootstrap_ratio(numerator, denominator, resamples=resamples, seed=seed)
    return np.asarray(np.cumprod(ratios, axis=1), dtype=np.float64)


def _linked_to_first(cells: pl.DataFrame, *, width: int) -> npt.NDArray[np.bool_]:
    """Which slots are linked to slot 0 through recommendations shown at two slots (a union-find
    over the distinct slot pairs: at most ``width`` squared of them, whatever the rows)."""
    import polars as pl

    pairs = (
        cells.filter(pl.col("slots_of_item") > 1)
        .with_columns(anchor=pl.col("position").min().over("assessment_id", "recommendation_id"))
        .filter(pl.col("position") != pl.col("anchor"))
        .select("anchor", "position")
        .unique()
    )
    parent = list(range(width))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for anchor, position in pairs.iter_rows():
        parent[root(anchor)] = root(position)
    first = root(0)
    return np.array([root(slot) == first for slot in range(width)])


def _cells(fitted: pl.DataFrame, item_key: list[str], width: int) -> _Cells:
    import polars as pl

    codes = fitted.select(
        item=pl.struct(item_key).rank("dense").cast(pl.Int64) - 1,
        group=pl.col("assessment_id").rank("dense").cast(pl.Int64) - 1,
    )
    item = codes["item"].to_numpy()
    group = codes["group"].to_numpy()
    return _Cells(
        item=item,
        position=fitted["position"].to_numpy(),
        shown=fitted["shown"].to_numpy().astype(np.float64),
        clicks=fitted["clicks"].to_numpy().astype(np.float64),
        group=group,
        items=int(item.max()) + 1 if item.size else 0,
        groups=int(group.max()) + 1 if group.size else 0,
        width=width,
    )


def _design(fitted: pl.DataFrame, features: list[str]) -> npt.NDArray[np.float64]:
    """Standardised feature columns plus an intercept, one row per cell (missing values: the mean)."""
    values = fitted.select(features).to_numpy().astype(np.float64)
    mean = np.nanmean(values, axis=0)
    values = np.where(np.isnan(values), mean, values)
    scale = values.std(axis=0)
    values = (values - mean) / np.where(scale > 0, scale, 1.0)
    return np.column_stack([np.ones(values.shape[0]), values])


_EPSILON = 1e-6


def _em(
    cells: _Cells,
    design: npt.NDArray[np.float64] | None,
    *,
    weights: npt.NDArray[np.float64] | None = None,
    start: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
    tolerance: float = EM_TOLERANCE,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """EM over the PBM on ``cells``, for one or several weightings of them at once.

    ``weights`` (replicates x cells; default one replicate of ones) re-weights the cells, as a
    bootstrap resample does. Returns ``theta`` (replicates x slots) and the relevance state:
    ``gamma`` per recommendation (replicates x items) without a ``design``, else the logistic
    coefficients (replicates x columns); both squeezed to one replicate when ``weights`` is None.
    ``start`` is a state to begin from (a warm start). A replicate stops when no slot's relative
    examination moved by more than ``tolerance`` in an iteration.

    Plain EM creeps along the ridge of the PBM likelihood (hundreds of steps), so it is
    accelerated with SQUAREM (Varadhan and Roland, 2008): two EM steps give a direction, the
    state jumps along it, and one more EM step follows; a jump that lowers the likelihood is
    replaced by the two plain steps, so every iteration still climbs.
    """
    single = weights is None
    weight = np.ones((1, cells.item.size)) if weights is None else weights
    replicates = weight.shape[0]
    slot_index = (np.arange(replicates)[:, None] * cells.width + cells.position[None, :]).ravel()
    exposure = np.bincount(
        slot_index, weights=(weight * cells.shown).ravel(), minlength=replicates * cells.width
    )
    exposure = exposure.reshape(replicates, cells.width)
    if start is not None:
        theta, state = np.atleast_2d(start[0]).copy(), np.atleast_2d(start[1]).copy()
    else:
        theta, state = _initial_state(cells, design, replicates)

    def step(
        theta: npt.NDArray[np.float64], state: npt.NDArray[np.float64], rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        count = rows.size
        relevance = _relevance(cells, design, state)
        examined_at = theta[:, cells.position]
        miss = np.maximum(1.0 - examined_at * relevance, _EPSILON)
        unclicked = cells.shown - cells.clicks
        examined = cells.clicks + unclicked * examined_at * (1.0 - relevance) / miss
        relevant = cells.clicks + unclicked * (1.0 - examined_at) * relevance / miss
        sums = np.bincount(
            slot_index[: count * cells.item.size],
            weights=(weight[rows] * examined).ravel(),
            minlength=count * cells.width,
        ).reshape(count, cells.width)
        with np.errstate(divide="ignore", invalid="ignore"):
            updated = np.where(exposure[rows] > 0, sums / exposure[rows], theta)
        relevance_state = _relevance_step(cells, design, state, relevant, weight[rows])
        return np.clip(updated, _EPSILON, 1.0 - _EPSILON), relevance_state

    def likelihood(
        theta: npt.NDArray[np.float64], state: npt.NDArray[np.float64], rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        click = np.clip(theta[:, cells.position] * _relevance(cells, design, state), _EPSILON, 1.0 - _EPSILON)
        per_cell = cells.clicks * np.log(click) + (cells.shown - cells.clicks) * np.log1p(-click)
        return np.asarray((weight[rows] * per_cell).sum(axis=1))

    active = np.arange(replicates)  # the replicates still moving; the converged ones are frozen
    for _ in range(EM_MAX_ITERATIONS):
        current = (theta[active], state[active])
        theta1, state1 = step(*current, active)
        theta2, state2 = step(theta1, state1, active)
        first = np.hstack([theta1 - current[0], state1 - current[1]])
        second = np.hstack([theta2 - 2 * theta1 + current[0], state2 - 2 * state1 + current[1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.sqrt((first**2).sum(axis=1) / (second**2).sum(axis=1))
        alpha = -np.maximum(np.nan_to_num(ratio, nan=1.0, posinf=1.0), 1.0)[:, None]
        width = theta.shape[1]
        jumped = np.hstack(current) - 2 * alpha * first + alpha**2 * second
        jump_theta = np.clip(jumped[:, :width], _EPSILON, 1.0 - _EPSILON)
        jump_state = jumped[:, width:] if design is not None else np.clip(jumped[:, width:], _EPSILON, 1.0)
        jump_theta, jump_state = step(jump_theta, jump_state, active)
        better = (likelihood(jump_theta, jump_state, active) >= likelihood(theta2, state2, active))[:, None]
        updated = np.where(better, jump_theta, theta2)
        state[active] = np.where(better, jump_state, state2)
        change = np.abs(updated / updated[:, :1] - current[0] / current[0][:, :1]).max(axis=1)
        theta[active] = updated
        active = active[change >= tolerance]
        if active.size == 0:
            break
    if single:
        return theta[0], state[0]
    return theta, state


def _initial_state(
    cells: _Cells, design: npt.NDArray[np.float64] | None, replicates: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Start from the click-through rate per slot (scaled under 1) and a middling relevance: not
    from theta = 1, where EM's posterior examination of every unclicked item is 1 and it never moves."""
    clicks = np.bincount(cells.position, weights=cells.clicks, minlength=cells.width)
    shown = np.bincount(cells.position, weights=cells.shown, minlength=cells.width)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(shown > 0, clicks / shown, 0.0)
    theta = np.clip(0.9 * rate / max(rate.max(), _EPSILON), 0.05, 0.9)
    if design is None:
        item_clicks = np.bincount(cells.item, weights=cells.clicks, minlength=cells.items)
        item_shown = np.bincount(cells.item, weights=cells.shown, minlength=cells.items)
        state = np.clip(item_clicks / np.maximum(item_shown, 1.0) / theta.mean(), 0.05, 0.95)
    else:
        state = np.zeros(design.shape[1])
    return np.tile(theta, (replicates, 1)), np.tile(state, (replicates, 1))


def _relevance(
    cells: _Cells, design: npt.NDArray[np.float64] | None, state: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """gamma of each cell (replicates x cells)."""
    if design is None:
        return np.clip(state[:, cells.item], _EPSILON, 1.0 - _EPSILON)
    return np.clip(_sigmoid(state @ design.T), _EPSILON, 1.0 - _EPSILON)


def _relevance_step(
    cells: _Cells,
    design: npt.NDArray[np.float64] | None,
    state: npt.NDArray[np.float64],
    relevant: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The M-step of the relevance: per recommendation, the mean posterior relevance of its shown
    items (a resample weights all of a recommendation's cells alike, so the weight cancels); with a
    design, Newton steps of a logistic regression of those posteriors on it."""
    if design is None:
        replicates = relevant.shape[0]
        index = (np.arange(replicates)[:, None] * cells.items + cells.item[None, :]).ravel()
        total = np.bincount(index, weights=relevant.ravel(), minlength=replicates * cells.items)
        shown = np.bincount(cells.item, weights=cells.shown, minlength=cells.items)
        return total.reshape(replicates, cells.items) / np.maximum(shown, _EPSILON)
    target = relevant / cells.shown
    coefficients = state.copy()
    for _ in range(_NEWTON_STEPS):
        predicted = _sigmoid(coefficients @ design.T)
        mass = weight * cells.shown
        gradient = (mass * (target - predicted)) @ design
        curvature = np.einsum("rc,cp,cq->rpq", mass * predicted * (1.0 - predicted), design, design)
        curvature += _RIDGE * np.eye(design.shape[1])
        coefficients = coefficients + np.linalg.solve(curvature, gradient[:, :, None])[:, :, 0]
    return coefficients


_NEWTON_STEPS = 2
_RIDGE = 1e-6


def _sigmoid(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def _bootstrap_em(
    cells: _Cells,
    design: npt.NDArray[np.float64] | None,
    theta: npt.NDArray[np.float64],
    state: npt.NDArray[np.float64],
    *,
    resamples: int,
    seed: int,
) -> npt.NDArray[np.float64]:
    """``resamples`` x slots relative examinations, each EM on a resample of the assessments,
    warm-started at the full-data solution. A slot a resample shows nothing at gets NaN."""
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_CELLS // max(cells.item.size * 4, 1))
    uniform = np.full(cells.groups, 1.0 / cells.groups)
    replicates = np.empty((resamples, cells.width))
    for begin in range(0, resamples, block):
        stop = min(begin + block, resamples)
        counts = rng.multinomial(cells.groups, uniform, size=stop - begin).astype(np.float64)
        weight = counts[:, cells.group]
        fitted, _ = _em(
            cells,
            design,
            weights=weight,
            start=(np.tile(theta, (stop - begin, 1)), np.tile(state, (stop - begin, 1))),
            tolerance=EM_BOOTSTRAP_TOLERANCE,
        )
        index = (np.arange(stop - begin)[:, None] * cells.width + cells.position[None, :]).ravel()
        shown = np.bincount(index, weights=weight.ravel(), minlength=(stop - begin) * cells.width)
        shown = shown.reshape(stop - begin, cells.width)
        relative = fitted / fitted[:, :1]
        replicates[begin:stop] = np.where(shown > 0, relative, np.nan)
    return replicates
