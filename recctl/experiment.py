"""Online experiments read from the logs: A/B tests between variants, and team-draft interleaving.

Both analyses start from the served lists (impressions) and the interactions linked to them
(:func:`recctl.attribution.link_interactions`), one row per item shown (:func:`served_items`):

- ``clicked``: a click-strength interaction (click, save, implement, share, rate) links to the item;
  a view (logged for everything on the page) and a dismissal do not count;
- ``implemented``: an ``implement`` links to it;
- ``label``: the pair label of its linked interactions under the label policy (0.0 without one).

**A/B tests** (:func:`analyse_ab`). A list belongs to the impression's ``variant``, else to the
variant its linked interactions name most often (``context.variant``); lists with neither are left
out and counted. Per variant:

- ``ctr`` = clicked items / items shown;
- ``implementation_rate`` = implemented items / items shown (per item shown, like ``ctr``, so the
  two are comparable and a variant cannot look better by getting fewer, surer clicks);
- ``mean_label`` = summed item labels / items shown;
- ``diversity_discounted`` = the mean over lists of the rank-discounted intra-list diversity of the
  list in its served order (:func:`recctl.diversity.diversity_in_order`; items not in the catalog
  match nothing).

The randomisation unit is the user, and one user's lists are not independent (a user who clicks a
lot clicks in every list), so every interval is a bootstrap over users: each resample weighs every
user by an independent Poisson(1) count (the Poisson bootstrap, Chamandy et al. 2012), the same
weight in every variant, which keeps a user seen in two variants one cluster. A list with no user
(neither in the impression nor in its interactions) is its own cluster. Intervals are the
2.5%/97.5% percentiles of the resampled figure. A comparison against the control gives the
difference (variant - control) and the relative lift (variant / control - 1), each with its
interval, and a two-sided p-value that inverts the same percentile interval: ``p`` is the smallest
``alpha`` whose ``1 - alpha`` percentile interval reaches 0 (interpolated between resamples, as
the interval is), so the 95% interval excludes 0 exactly when ``p < 0.05``. The resamples cannot
resolve a p-value below ``1 / resamples``: smaller ones are reported as that floor.

The sample-ratio-mismatch (SRM) check is a chi-squared goodness-of-fit test of the users per
variant against the expected split (equal by default); ``p < 0.001`` raises the flag: the
assignment or the logging is broken, and the comparisons cannot be trusted.

**Interleaving** (:func:`analyse_interleaving`, Chapelle et al. 2012). Each item of a team-draft
list names its ``team``. Per list, the clicks on each team's items decide it: a win for the first
team (``A``) when its items got more clicks, a loss when fewer, a tie when as many (and at least
one); lists without clicks decide nothing and are counted apart. The preference is
``(wins + ties / 2) / (wins + losses + ties) - 0.5`` (from -0.5, B always preferred, to 0.5),
with a user-clustered bootstrap interval as above; the sign test is the two-sided binomial test of
wins against losses (ties left out), which treats lists as independent: when a few users make many
lists, trust the clustered interval over it.

The library takes frames and returns reports; :func:`served_items_from_store` reads a store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.errors import InputError, InsufficientDataError
from recctl.records.schema import CLICK_TYPES

if TYPE_CHECKING:
    import polars as pl

    from recctl.labels import LabelPolicy
    from recctl.stores.base import Store

METRICS: tuple[str, ...] = ("ctr", "implementation_rate", "mean_label", "diversity_discounted")
"""The per-variant figures, in the order they are reported."""
CONFIDENCE = 0.95
SRM_THRESHOLD = 0.001
"""The sample-ratio-mismatch flag is raised when the chi-squared p-value is below this."""

ITEM_COLUMNS: tuple[str, ...] = (
    "request_id",
    "variant",
    "unit",
    "team",
    "position",
    "recommendation_id",
    "clicked",
    "implemented",
    "label",
)
"""The columns of :func:`served_items`: one row per item shown, lists contiguous in slot order."""

_TRAITS = ("category", "cloud_provider", "priority", "implementation_effort", "services", "tags")
# (list, value) totals summed per user, in this order; a metric is a ratio of two of them.
_TOTALS = ("lists", "items", "clicks", "implementations", "label_sum", "diversity_sum")
_RATIOS = {
    "ctr": ("clicks", "items"),
    "implementation_rate": ("implementations", "items"),
    "mean_label": ("label_sum", "items"),
    "diversity_discounted": ("diversity_sum", "lists"),
}
_BOOTSTRAP_CELLS = 4_000_000
"""Poisson weights are drawn in blocks of about this many (resample, user) cells, bounding memory."""

Values = npt.NDArray[np.float64]


# -- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A figure and its 95% interval (None where the data cannot give one)."""

    value: float | None
    low: float | None
    high: float | None

    def as_json(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Comparison:
    """One metric of one variant against the control."""

    variant: str
    control: str
    metric: str
    difference: Estimate
    relative_lift: Estimate
    p_value: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "control": self.control,
            "metric": self.metric,
            "difference": self.difference.value,
            "low": self.difference.low,
            "high": self.difference.high,
            "relative_lift": self.relative_lift.value,
            "relative_low": self.relative_lift.low,
            "relative_high": self.relative_lift.high,
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class SampleRatio:
    """The sample-ratio-mismatch check: users per variant against the expected shares."""

    users: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    flag: bool
    threshold: float = SRM_THRESHOLD

    def as_json(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "flag": self.flag,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "users": self.users,
            "expected": self.expected,
        }


@dataclass(frozen=True)
class VariantSummary:
    lists: int
    users: int
    items: int
    clicks: int
    implementations: int
    metrics: dict[str, Estimate]

    def as_json(self) -> dict[str, Any]:
        return {
            "lists": self.lists,
            "users": self.users,
            "items": self.items,
            "clicks": self.clicks,
            "implementations": self.implementations,
            **{name: estimate.as_json() for name, estimate in self.metrics.items()},
        }


@dataclass(frozen=True)
class ExperimentReport:
    """:func:`analyse_ab`'s result; :meth:`as_json` is ``recctl experiment --format json``."""

    control: str
    variants: dict[str, VariantSummary]
    comparisons: list[Comparison]
    srm: SampleRatio
    resamples: int
    lists_without_variant: int = 0
    users_in_several_variants: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "variants": {name: summary.as_json() for name, summary in self.variants.items()},
            "comparisons": [comparison.as_json() for comparison in self.comparisons],
            "srm": self.srm.as_json(),
            "resamples": self.resamples,
            "lists_without_variant": self.lists_without_variant,
            "users_in_several_variants": self.users_in_several_variants,
        }


@dataclass(frozen=True)
class InterleavingReport:
    """:func:`analyse_interleaving`'s result; :meth:`as_json` is ``--interleaving --format json``."""

    teams: tuple[str, str]
    lists: int
    users: int
    wins: int
    losses: int
    ties: int
    no_clicks: int
    clicks: dict[str, int]
    preference: Estimate
    sign_test_p_value: float
    resamples: int
    winner: str | None = field(default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "teams": list(self.teams),
            "lists": self.lists,
            "users": self.users,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
            "no_clicks": self.no_clicks,
            "clicks": self.clicks,
            "preference": self.preference.as_json(),
            "sign_test": {"p_value": self.sign_test_p_value},
            "winner": self.winner,
            "resamples": self.resamples,
        }


class UnknownControlError(InputError):
    """The control named is not a variant of the lists analysed."""

    def __init__(self, control: str, variants: Sequence[str]) -> None:
        self.control = control
        self.variants = list(variants)
        super().__init__(self.message())

    def message(self, flag: Any = None) -> str:
        named = f"{flag('control')} " if flag else "control "
        known = ", ".join(self.variants)
        return f"{named}{self.control!r} is not a variant of the lists in the window ({known})"


class SplitMismatchError(InputError):
    """The expected split does not name every variant of the lists analysed."""

    def __init__(self, missing: Sequence[str], named: Sequence[str]) -> None:
        self.missing = list(missing)
        self.named = list(named)
        super().__init__(self.message())

    def message(self, flag: Any = None) -> str:
        option = flag("expected_split") if flag else "the expected split"
        return (
            f"variant(s) {', '.join(self.missing)} of the lists in the window are not in {option} "
            f"({', '.join(self.named)})"
        )


# -- the bootstrap ----------------------------------------------------------------------------------
def poisson_bootstrap(totals: npt.ArrayLike, *, resamples: int, seed: int = 0) -> Values:
    """Resampled column sums of ``totals`` (clusters x values): each resample weighs each cluster
    (row) by an independent Poisson(1) count. Returns ``resamples`` x values.

    >>> poisson_bootstrap([[1.0, 2.0], [3.0, 4.0]], resamples=3, seed=0).shape
    (3, 2)
    """
    sums = np.asarray(totals, dtype=np.float64)
    if sums.ndim != 2:
        raise ValueError("poisson_bootstrap needs a 2-D array: clusters x values")
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    rng = np.random.default_rng(seed)
    clusters = sums.shape[0]
    out = np.empty((resamples, sums.shape[1]))
    block = max(1, _BOOTSTRAP_CELLS // max(clusters, 1))
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        weights = rng.poisson(1.0, size=(stop - start, clusters)).astype(np.float64)
        out[start:stop] = weights @ sums
    return out


def percentile_interval(samples: npt.ArrayLike, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The percentile interval of the finite ``samples`` (None when there are none)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def percentile_p_value(samples: npt.ArrayLike, null: float = 0.0) -> float | None:
    """Two-sided p-value of ``null`` against the bootstrap ``samples``: the smallest ``alpha`` whose
    ``1 - alpha`` percentile interval (:func:`percentile_interval`, interpolated the same way)
    reaches ``null``, floored at ``1 / len(samples)``. None when no sample is finite.

    So, for any ``a`` above the floor, ``percentile_interval(samples, 1 - a)`` excludes ``null``
    exactly when the p-value is below ``a``. Samples all equal to ``null`` give 1.0.

    >>> percentile_p_value([-1.0, 1.0, 2.0, 3.0, 4.0])  # 0 sits at the 12.5% quantile
    0.25
    """
    values = np.sort(np.asarray(samples, dtype=np.float64))
    values = values[np.isfinite(values)]
    count = values.size
    if count == 0:
        return None
    if count == 1:
        return 1.0  # the floor
    # np.quantile's linear rule: the sorted sample i is the quantile i / (count - 1). The interval's
    # low end is above the null for levels past `upper`, its high end below it for levels past
    # 1 - `lower`: the ranks where the interpolated quantile leaves the null.
    below = int(np.searchsorted(values, null, side="left"))
    through = int(np.searchsorted(values, null, side="right"))
    if below > 0 and through < count and below == through:
        before, after = values[below - 1], values[below]  # null lies strictly between them
        upper = lower = (below - 1 + (null - before) / (after - before)) / (count - 1)
    else:
        upper = 0.0 if through == 0 else 1.0 if through == count else (through - 1) / (count - 1)
        lower = 1.0 if below == count else below / (count - 1)
    return float(min(1.0, max(2.0 * min(upper, 1.0 - lower), 1.0 / count)))


def _ratio(numerator: Values, denominator: Values) -> Values:
    return np.divide(numerator, denominator, out=np.full(np.shape(numerator), np.nan), where=denominator > 0)


def _estimate(point: float, samples: Values) -> Estimate:
    interval = percentile_interval(samples)
    if not np.isfinite(point):
        return Estimate(None, None, None)
    return Estimate(float(point), *(interval if interval is not None else (None, None)))


# -- the served items -------------------------------------------------------------------------------
def served_items(
    impressions: pl.DataFrame, linked_interactions: pl.DataFrame, policy: LabelPolicy | None = None
) -> pl.DataFrame:
    """One row per item shown (:data:`ITEM_COLUMNS`), lists contiguous and in slot order.

    ``impressions`` are stored impression rows; ``linked_interactions`` interactions with
    ``request_id`` set to the list each is linked to (null: unlinked), as
    :func:`recctl.attribution.link_interactions` returns them, with ``interaction_type``,
    ``interaction_value``, ``timestamp``, ``user_id`` and (optional) ``variant``. ``unit`` is the
    list's user (the impression's, else its interactions'), else ``list:<request_id>``; ``variant``
    the impression's, else the one its interactions name most often (ties: the first by name).
    A recommendation a list shows twice keeps its first slot.
    """
    import polars as pl

    from recctl.dataset import pair_labels
    from recctl.features import GROUP
    from recctl.labels import DEFAULT_POLICY

    shown = (
        _with_columns(impressions, {"user_id": pl.String(), "variant": pl.String(), "team": pl.String()})
        .select(
            pl.col("request_id").cast(pl.String),
            pl.col("user_id").cast(pl.String),
            pl.col("variant").cast(pl.String),
            pl.col("team").cast(pl.String),
            pl.col("position").cast(pl.Int64),
            pl.col("recommendation_id").cast(pl.String),
        )
        .sort("request_id", "position")
        .unique(["request_id", "recommendation_id"], keep="first", maintain_order=True)
    )
    linked = _with_columns(
        linked_interactions,
        {"variant": pl.String(), "interaction_value": pl.Float64(), "user_id": pl.String()},
    ).filter(pl.col("request_id").is_not_null())
    linked = linked.with_columns(
        pl.col("interaction_type").cast(pl.String).str.to_lowercase().str.strip_chars(),
        pl.col("request_id").cast(pl.String),
        pl.col("recommendation_id").cast(pl.String),
    )
    per_item = linked.group_by("request_id", "recommendation_id").agg(
        pl.col("interaction_type").is_in(CLICK_TYPES).any().alias("clicked"),
        (pl.col("interaction_type") == "implement").any().alias("implemented"),
    )
    labels = pair_labels(
        linked.select(
            pl.col("request_id").alias(GROUP),
            "recommendation_id",
            "interaction_type",
            pl.col("interaction_value").cast(pl.Float64),
            "timestamp",
            pl.lit(None, dtype=pl.Int64).alias("position"),
        ),
        policy or DEFAULT_POLICY,
    ).select(pl.col(GROUP).alias("request_id"), "recommendation_id", "label")
    per_list = linked.group_by("request_id").agg(
        pl.col("user_id").drop_nulls().cast(pl.String).first().alias("__interaction_user"),
        pl.col("variant")
        .drop_nulls()
        .cast(pl.String)
        .sort()
        .mode()
        .sort()
        .first()
        .alias("__interaction_variant"),
    )
    keys = ["request_id", "recommendation_id"]
    return (
        shown.join(per_item, on=keys, how="left", maintain_order="left")
        .join(labels, on=keys, how="left", maintain_order="left")
        .join(per_list, on="request_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("variant", "__interaction_variant").alias("variant"),
            pl.coalesce(
                "user_id",
                "__interaction_user",
                pl.lit("list:") + pl.col("request_id"),
            ).alias("unit"),
            pl.col("clicked").fill_null(False),
            pl.col("implemented").fill_null(False),
            pl.col("label").fill_null(0.0),
        )
        .select(ITEM_COLUMNS)
    )


def _with_columns(frame: pl.DataFrame, optional: Mapping[str, pl.DataType]) -> pl.DataFrame:
    import polars as pl

    return frame.with_columns(
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in optional.items() if name not in frame.columns
    )


def list_outcomes(items: pl.DataFrame, recommendations: pl.DataFrame) -> pl.DataFrame:
    """One row per served list of ``items`` (:func:`served_items`): ``request_id``, ``variant``,
    ``unit``, ``items``, ``clicks``, ``implementations``, ``label_sum`` and
    ``diversity_discounted`` (of the list in its served order, from the catalog's traits in
    ``recommendations``; an item not in the catalog matches nothing)."""
    import polars as pl

    from recctl.diversity import diversity_in_order, list_traits_of

    catalog = recommendations.select(
        pl.col("recommendation_id").cast(pl.String), *(pl.col(name) for name in _TRAITS)
    ).unique("recommendation_id", keep="first")
    with_traits = items.join(catalog, on="recommendation_id", how="left", maintain_order="left")
    lists = items.group_by("request_id", maintain_order=True).agg(
        pl.col("variant").first(),
        pl.col("unit").first(),
        pl.len().alias("items"),
        pl.col("clicked").sum().alias("clicks"),
        pl.col("implemented").sum().alias("implementations"),
        pl.col("label").sum().alias("label_sum"),
    )
    if lists.is_empty():
        return lists.with_columns(pl.lit(None, dtype=pl.Float64).alias("diversity_discounted"))
    traits = list_traits_of(with_traits, lists["items"].to_list())
    _, discounted = diversity_in_order(traits)
    return lists.with_columns(pl.Series("diversity_discounted", discounted, dtype=pl.Float64))


def served_items_from_store(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    attribution_hours: float = defaults.ATTRIBUTION_HOURS,
    policy: LabelPolicy | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """The items of the lists served in ``since <= timestamp < until`` (:func:`served_items`), the
    catalog's recommendations, and how many interactions were read and left unlinked.
    Interactions are read up to ``attribution_hours`` past the window's end, so feedback on a
    list served just before the end still counts."""
    from recctl.attribution import LINKED_INTERACTION_COLUMNS, linked_window

    impressions, linked, catalog, counts = linked_window(
        store,
        since,
        until,
        interaction_columns=[*LINKED_INTERACTION_COLUMNS, "interaction_value", "variant"],
        catalog_columns=_TRAITS,
        attribution_hours=attribution_hours,
    )
    return served_items(impressions, linked, policy), catalog, counts


# -- A/B tests --------------------------------------------------------------------------------------
def analyse_ab(
    lists: pl.DataFrame,
    *,
    control: str | None = None,
    expected_split: Mapping[str, float] | None = None,
    resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> ExperimentReport:
    """Per-variant figures, comparisons against ``control`` and the SRM check (module docstring).

    ``lists`` is :func:`list_outcomes`' frame; lists with a null ``variant`` are left out (counted).
    ``control`` defaults to a variant named ``control``, else the first by name.
    ``expected_split`` maps each variant to its share (any positive weights; normalised); it must
    name every variant of the lists, and may name more (a variant that got no user is the worst
    mismatch). Equal shares over the variants found by default.

    Raises :class:`~recctl.errors.InsufficientDataError` when fewer than two variants have lists,
    :class:`UnknownControlError` / :class:`SplitMismatchError` for a control or split that does not
    fit the variants.
    """
    import polars as pl

    with_variant = lists.filter(pl.col("variant").is_not_null())
    without = lists.height - with_variant.height
    names = sorted(with_variant["variant"].unique().to_list())
    if not names:
        raise InsufficientDataError(
            "no served list in the window names a variant (impression variant or context.variant)"
        )
    if len(names) < 2:
        raise InsufficientDataError(
            f"the lists in the window all belong to variant {names[0]!r}; an A/B test needs two or more"
        )
    if control is None:
        control = "control" if "control" in names else names[0]
    elif control not in names:
        raise UnknownControlError(control, names)
    shares = _expected_shares(names, expected_split)

    variant_index = {name: i for i, name in enumerate(names)}
    per_unit = (
        with_variant.group_by("unit", "variant")
        .agg(
            pl.len().alias("lists"),
            pl.col("items").sum(),
            pl.col("clicks").sum(),
            pl.col("implementations").sum(),
            pl.col("label_sum").sum(),
            pl.col("diversity_discounted").fill_null(0.0).sum().alias("diversity_sum"),
        )
        .sort("unit", "variant")
    )
    _, unit_row = np.unique(per_unit["unit"].to_numpy(), return_inverse=True)
    variant_column = np.array([variant_index[name] for name in per_unit["variant"].to_list()], dtype=np.int64)
    units = int(unit_row.max()) + 1
    totals = np.zeros((units, len(names), len(_TOTALS)))
    totals[unit_row, variant_column] = per_unit.select(_TOTALS).to_numpy().astype(np.float64)

    point = totals.sum(axis=0)  # variants x totals
    boot = poisson_bootstrap(totals.reshape(units, -1), resamples=resamples, seed=seed).reshape(
        resamples, len(names), len(_TOTALS)
    )
    column = {name: i for i, name in enumerate(_TOTALS)}
    point_ratios = {
        metric: _ratio(point[:, column[top]], point[:, column[bottom]])
        for metric, (top, bottom) in _RATIOS.items()
    }
    boot_ratios = {
        metric: _ratio(boot[:, :, column[top]], boot[:, :, column[bottom]])
        for metric, (top, bottom) in _RATIOS.items()
    }
    users_per_variant = np.bincount(variant_column, minlength=len(names))
    variants = {
        name: VariantSummary(
            lists=int(point[v, column["lists"]]),
            users=int(users_per_variant[v]),
            items=int(point[v, column["items"]]),
            clicks=int(point[v, column["clicks"]]),
            implementations=int(point[v, column["implementations"]]),
            metrics={
                metric: _estimate(point_ratios[metric][v], boot_ratios[metric][:, v]) for metric in METRICS
            },
        )
        for v, name in enumerate(names)
    }
    c = variant_index[control]
    comparisons = []
    for v, name in enumerate(names):
        if v == c:
            continue
        for metric in METRICS:
            difference = boot_ratios[metric][:, v] - boot_ratios[metric][:, c]
            lift = _ratio(boot_ratios[metric][:, v], boot_ratios[metric][:, c]) - 1.0
            point_v, point_c = point_ratios[metric][v], point_ratios[metric][c]
            point_lift = point_v / point_c - 1.0 if point_c > 0 else np.nan
            comparisons.append(
                Comparison(
                    variant=name,
                    control=control,
                    metric=metric,
                    difference=_estimate(point_v - point_c, difference),
                    relative_lift=_estimate(point_lift, lift),
                    p_value=percentile_p_value(difference) if np.isfinite(point_v - point_c) else None,
                )
            )
    users = {
        name: int(users_per_variant[variant_index[name]]) if name in variant_index else 0 for name in shares
    }
    return ExperimentReport(
        control=control,
        variants=variants,
        comparisons=comparisons,
        srm=sample_ratio_check(users, shares),
        resamples=resamples,
        lists_without_variant=without,
        users_in_several_variants=int(np.sum(np.bincount(unit_row) > 1)),
    )


def _expected_shares(names: Sequence[str], expected_split: Mapping[str, float] | None) -> dict[str, float]:
    if expected_split is None:
        return {name: 1.0 / len(names) for name in names}
    missing = [name for name in names if name not in expected_split]
    if missing:
        raise SplitMismatchError(missing, list(expected_split))
    weights = {name: float(weight) for name, weight in expected_split.items()}
    if any(not np.isfinite(w) or w <= 0 for w in weights.values()):
        raise InputError("every share of an expected split must be a positive number")
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def sample_ratio_check(
    users: Mapping[str, int], shares: Mapping[str, float], *, threshold: float = SRM_THRESHOLD
) -> SampleRatio:
    """Chi-squared goodness of fit of ``users`` per variant against ``shares`` (summing to 1, one per
    variant of ``users``); the flag is ``p < threshold``.

    >>> sample_ratio_check({"A": 900, "B": 100}, {"A": 0.5, "B": 0.5}).flag
    True
    """
    from scipy.stats import chisquare

    names = list(shares)
    observed = np.array([users.get(name, 0) for name in names], dtype=np.float64)
    expected = np.array([shares[name] for name in names]) * observed.sum()
    if observed.sum() == 0 or len(names) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        result = chisquare(observed, expected)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return SampleRatio(
        users={name: int(count) for name, count in zip(names, observed, strict=True)},
        expected=dict(shares),
        statistic=statistic,
        p_value=p_value,
        flag=bool(p_value < threshold),
        threshold=threshold,
    )


# -- interleaving -----------------------------------------------------------------------------------
def analyse_interleaving(
    items: pl.DataFrame, *, resamples: int = defaults.BOOTSTRAP_RESAMPLES, seed: int = 0
) -> InterleavingReport:
    """Wins, losses, ties, the preference with its interval and the sign test (module docstring).

    ``items`` is :func:`served_items`' frame; only lists whose items name a ``team`` count, and
    items without one are not credited. The teams are ``A`` and ``B`` when those are the names,
    else the two names in alphabetical order (the first is the one whose wins are counted).

    Raises :class:`~recctl.errors.InsufficientDataError` when no list is interleaved or none has a
    click, and :class:`~recctl.errors.InputError` when the lists name other than two teams.
    """
    import polars as pl
    from scipy.stats import binomtest

    teamed = items.filter(pl.col("team").is_not_null().any().over("request_id"))
    if teamed.is_empty():
        raise InsufficientDataError(
            "no served list in the window is interleaved (items with a team); log team-draft lists"
        )
    teams = sorted(teamed["team"].drop_nulls().unique().to_list())
    if len(teams) != 2:
        raise InputError(
            f"interleaved lists name {len(teams)} team(s) ({', '.join(teams)}); team-draft compares two"
        )
    first, second = teams
    lists = teamed.group_by("request_id").agg(
        pl.col("unit").first(),
        (pl.col("clicked") & (pl.col("team") == first)).sum().alias("first_clicks"),
        (pl.col("clicked") & (pl.col("team") == second)).sum().alias("second_clicks"),
    )
    first_clicks = lists["first_clicks"].to_numpy().astype(np.int64)
    second_clicks = lists["second_clicks"].to_numpy().astype(np.int64)
    win = first_clicks > second_clicks
    loss = first_clicks < second_clicks
    tie = (first_clicks == second_clicks) & (first_clicks > 0)
    decided = win | loss | tie
    wins, losses, ties = int(win.sum()), int(loss.sum()), int(tie.sum())
    if not decided.any():
        raise InsufficientDataError(
            f"none of the {lists.height:,} interleaved lists in the window has a click; nothing to credit"
        )
    _, unit_row = np.unique(lists["unit"].to_numpy(), return_inverse=True)
    units = int(unit_row.max()) + 1
    credit = win + 0.5 * tie
    totals = np.column_stack(
        [
            np.bincount(unit_row, weights=credit, minlength=units),
            np.bincount(unit_row, weights=decided.astype(np.float64), minlength=units),
        ]
    )
    boot = poisson_bootstrap(totals, resamples=resamples, seed=seed)
    point = float(credit.sum() / decided.sum()) - 0.5
    preference = _estimate(point, _ratio(boot[:, 0], boot[:, 1]) - 0.5)
    p_value = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    winner = None
    if preference.low is not None and preference.low > 0:
        winner = first
    elif preference.high is not None and preference.high < 0:
        winner = second
    return InterleavingReport(
        teams=(first, second),
        lists=lists.height,
        users=units,
        wins=wins,
        losses=losses,
        ties=ties,
        no_clicks=int((~decided).sum()),
        clicks={first: int(first_clicks.sum()), second: int(second_clicks.sum())},
        preference=preference,
        sign_test_p_value=p_value,
        resamples=resamples,
        winner=winner,
    )
