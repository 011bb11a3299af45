"""History features: what a user did before a moment, and how categories and agents fared before it.

Every value is *as of* a moment ``as_of`` (a served list's time, or a group's first interaction)
and comes from strictly earlier interactions only, so no row sees its own list's interactions or
anything later. For a row of user ``u``, recommendation category ``c`` and agent ``a``:

- ``user_interactions``: u's interactions before ``as_of``;
- ``user_share_<category>``: the share of them on recommendations of each usual category;
- ``user_implementation_rate``: u's implementations / u's clicks (the stats' definition);
- ``user_mean_engagement``: the mean label of u's interactions;
- ``user_days_since_last``: days from u's last interaction to ``as_of``;
- ``user_category_rate``: u's click rate on category ``c``, smoothed towards the rate of ``c``
  among all users: ``(clicks + w * global_rate) / (shown + w)``, w = :data:`PRIOR_WEIGHT`;
- ``category_engagement`` and ``agent_engagement``: the click rate of ``c`` and of ``a`` among
  all users, smoothed the same way towards the rate of everything.

A click is an interaction of a type in :data:`recctl.records.schema.CLICK_TYPES`. "Shown" counts the items
of the served lists when there are served lists (impressions), else views. A user without earlier
interactions has ``user_interactions`` 0 and the rates it cannot have missing (NaN); a row without
a user, or no history at all (``tables`` None in :func:`history_features`), leaves every user
feature missing, never 0. Everything is a handful of sorted tables and as-of joins
(``join_asof``, strictly earlier), never a loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recctl.records.schema import CLICK_TYPES, INTERACTION_TYPES, USUAL_CATEGORIES

PRIOR_WEIGHT = 10.0
"""w: how many shown items the global rate counts for in a smoothed rate."""
MS_PER_DAY = 86_400_000

USER_FEATURES: tuple[str, ...] = (
    "user_interactions",
    *(f"user_share_{category}" for category in USUAL_CATEGORIES),
    "user_implementation_rate",
    "user_mean_engagement",
    "user_days_since_last",
    "user_category_rate",
)
ITEM_FEATURES: tuple[str, ...] = ("category_engagement", "agent_engagement")
HISTORY_FEATURES: tuple[str, ...] = (*USER_FEATURES, *ITEM_FEATURES)

_TYPE_COUNTS = tuple(f"type_{name}" for name in INTERACTION_TYPES)
_CATEGORY_COUNTS = tuple(f"category_{category}" for category in USUAL_CATEGORIES)
_USER_TOTALS = ("interactions", "label_sum", *_TYPE_COUNTS, *_CATEGORY_COUNTS)


@dataclass(frozen=True)
class HistoryTables:
    """The running totals the features are read from, each sorted by ``timestamp`` (UTC ms).

    ``users``: per user and moment, the user's totals up to and including that moment
    (``interactions``, ``label_sum``, ``type_<type>``, ``category_<category>``) and ``last_ms``.
    ``user_categories``: per user, category and moment, the user's ``clicks`` and ``shown`` there.
    ``categories``, ``agents``: the same per category and per agent among all users; ``overall``:
    everything's ``clicks`` and ``shown``.
    """

    users: pl.DataFrame
    user_categories: pl.DataFrame
    categories: pl.DataFrame
    agents: pl.DataFrame
    overall: pl.DataFrame

    @classmethod
    def build(
        cls,
        interactions: pl.DataFrame,
        recommendations: pl.DataFrame,
        impressions: pl.DataFrame | None = None,
    ) -> HistoryTables:
        """From stored ``interactions`` (``user_id``, ``recommendation_id``, ``interaction_type``,
        ``label``, ``timestamp``), the catalog (``recommendation_id``, ``category``,
        ``agent_name``) and, when there are any, the served lists' item rows (``user_id``,
        ``timestamp``, ``recommendation_id``), which then count as "shown"."""
        catalog = recommendations.select(
            "recommendation_id", pl.col("category").str.to_lowercase(), "agent_name"
        ).unique("recommendation_id", keep="last")
        events = (
            interactions.select(
                "user_id",
                "recommendation_id",
                _ms("timestamp"),
                pl.col("interaction_type").str.to_lowercase().alias("type"),
                pl.col("label").cast(pl.Float64),
            )
            .filter(pl.col("user_id").is_not_null() & pl.col("timestamp").is_not_null())
            .join(catalog, on="recommendation_id", how="left")
        )
        click = pl.col("type").is_in(CLICK_TYPES).cast(pl.Int64)
        if impressions is not None and not impressions.is_empty():
            shown_rows = (
                impressions.select("user_id", "recommendation_id", _ms("timestamp"))
                .filter(pl.col("timestamp").is_not_null())
                .join(catalog, on="recommendation_id", how="left")
                .with_columns(clicks=pl.lit(0, pl.Int64), shown=pl.lit(1, pl.Int64))
            )
            clicked = events.with_columns(clicks=click, shown=pl.lit(0, pl.Int64))
        else:
            shown_rows = None
            clicked = events.with_columns(clicks=click, shown=(pl.col("type") == "view").cast(pl.Int64))
        rates = clicked.select("user_id", "category", "agent_name", "timestamp", "clicks", "shown")
        if shown_rows is not None:
            rates = pl.concat([rates, shown_rows.select(rates.columns)], how="vertical")
        return cls(
            users=_user_totals(events),
            user_categories=_running(rates.filter(pl.col("user_id").is_not_null()), ["user_id", "category"]),
            categories=_running(rates, ["category"]),
            agents=_running(rates, ["agent_name"]),
            overall=_running(rates, []),
        )


def _ms(name: str) -> pl.Expr:
    return pl.col(name).dt.epoch("ms").alias(name)


def _user_totals(events: pl.DataFrame) -> pl.DataFrame:
    """Per user and moment, the user's totals up to and including it."""
    increments = events.select(
        "user_id",
        "timestamp",
        pl.lit(1, pl.Int64).alias("interactions"),
        pl.col("label").fill_null(0.0).alias("label_sum"),
        *((pl.col("type") == name).cast(pl.Int64).alias(f"type_{name}") for name in INTERACTION_TYPES),
        *(
            (pl.col("category") == category).fill_null(False).cast(pl.Int64).alias(f"category_{category}")
            for category in USUAL_CATEGORIES
        ),
    )
    per_moment = increments.group_by("user_id", "timestamp").agg(pl.col(_USER_TOTALS).sum())
    return (
        per_moment.sort("user_id", "timestamp")
        .with_columns(pl.col(_USER_TOTALS).cum_sum().over("user_id"), pl.col("timestamp").alias("last_ms"))
        .sort("timestamp")
    )


def _running(rows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Running ``clicks`` and ``shown`` per ``keys`` (null keys dropped) and moment, sorted by time."""
    rows = rows.filter(pl.all_horizontal(pl.col(key).is_not_null() for key in keys)) if keys else rows
    per_moment = rows.group_by(*keys, "timestamp").agg(pl.col("clicks", "shown").sum())
    ordered = per_moment.sort(*keys, "timestamp")
    totals = pl.col("clicks", "shown").cum_sum()
    return ordered.with_columns(totals.over(keys) if keys else totals).sort("timestamp")


TOTALS: tuple[str, ...] = (
    *_USER_TOTALS,
    "last_ms",
    "user_category_clicks",
    "user_category_shown",
    "category_clicks",
    "category_shown",
    "agent_clicks",
    "agent_shown",
    "overall_clicks",
    "overall_shown",
)
"""The raw as-of totals of a row, from which :func:`features_from_totals` derives the features:
the user's (``interactions``, ``label_sum``, ``type_<type>``, ``category_<category>``,
``last_ms``; null when the user is not known), the user's clicks and shown items in the row's
category, and the clicks and shown items of the category, the agent and everything among all users."""


def history_features(rows: pl.DataFrame, tables: HistoryTables | None) -> pl.DataFrame:
    """The :data:`HISTORY_FEATURES` of ``rows`` (``user_id``, ``as_of`` (a datetime), ``category``,
    ``agent_name``), in their order, as of each row's ``as_of`` from strictly earlier history.

    ``tables`` None: no history is known, every feature is missing (NaN).
    """
    if tables is None:
        return pl.DataFrame(
            {name: pl.repeat(float("nan"), rows.height, eager=True) for name in HISTORY_FEATURES}
        )
    return features_from_totals(history_totals(rows, tables))


def history_totals(rows: pl.DataFrame, tables: HistoryTables) -> pl.DataFrame:
    """Per row of ``rows`` (as for :func:`history_features`), in order: ``user_id``, ``as_of_ms``,
    ``category``, ``agent_name`` and the :data:`TOTALS` strictly before ``as_of``."""
    queries = rows.select(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("__row"),
        "user_id",
        pl.col("as_of").dt.epoch("ms").alias("timestamp"),
        pl.col("category").str.to_lowercase(),
        "agent_name",
    ).sort("timestamp")

    def running(table: pl.DataFrame, prefix: str) -> pl.DataFrame:
        return table.rename({"clicks": f"{prefix}_clicks", "shown": f"{prefix}_shown"})

    joined = (
        _before(queries, tables.users.select("user_id", "timestamp", *_USER_TOTALS, "last_ms"), ["user_id"])
        .pipe(_before, running(tables.user_categories, "user_category"), ["user_id", "category"])
        .pipe(_before, running(tables.categories, "category"), ["category"])
        .pipe(_before, running(tables.agents, "agent"), ["agent_name"])
        .pipe(_before, running(tables.overall, "overall"), [])
    )
    counts = [name for name in TOTALS if name != "last_ms"]
    known = pl.col("user_id").is_not_null()
    return (
        joined.sort("__row")
        .with_columns(pl.col(counts).fill_null(0).cast(pl.Float64))
        .with_columns(  # a user not known has no totals at all (not zeros)
            pl.when(known).then(pl.col(_USER_TOTALS)).name.keep(),
        )
        .select("user_id", pl.col("timestamp").alias("as_of_ms"), "category", "agent_name", *TOTALS)
    )


def features_from_totals(totals: pl.DataFrame) -> pl.DataFrame:
    """The :data:`HISTORY_FEATURES` from rows of :func:`history_totals`' columns: the one
    definition of the features, whichever way the totals were found."""
    known = pl.col("interactions").is_not_null()
    interactions = pl.col("interactions")
    overall_rate = _ratio(pl.col("overall_clicks"), pl.col("overall_shown"))
    category_rate = _ratio(pl.col("category_clicks"), pl.col("category_shown"))
    features = [
        pl.when(known).then(interactions).alias("user_interactions"),
        *(
            pl.when(known)
            .then(_ratio(pl.col(f"category_{category}"), interactions))
            .alias(f"user_share_{category}")
            for category in USUAL_CATEGORIES
        ),
        pl.when(known)
        .then(_ratio(pl.col("type_implement"), pl.col("type_click")))
        .alias("user_implementation_rate"),
        pl.when(known).then(_ratio(pl.col("label_sum"), interactions)).alias("user_mean_engagement"),
        pl.when(known & pl.col("last_ms").is_not_null())
        .then((pl.col("as_of_ms") - pl.col("last_ms")).cast(pl.Float64) / MS_PER_DAY)
        .alias("user_days_since_last"),
        pl.when(known & pl.col("category").is_not_null())
        .then(_smoothed(pl.col("user_category_clicks"), pl.col("user_category_shown"), category_rate))
        .alias("user_category_rate"),
        pl.when(pl.col("category").is_not_null())
        .then(_smoothed(pl.col("category_clicks"), pl.col("category_shown"), overall_rate))
        .alias("category_engagement"),
        pl.when(pl.col("agent_name").is_not_null())
        .then(_smoothed(pl.col("agent_clicks"), pl.col("agent_shown"), overall_rate))
        .alias("agent_engagement"),
    ]
    return totals.select(features).with_columns(
        pl.col(HISTORY_FEATURES).cast(pl.Float64).fill_null(float("nan"))
    )


def _before(queries: pl.DataFrame, totals: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Each query row with the totals of its ``keys`` at the last moment strictly before its own."""
    return queries.join_asof(
        totals,
        on="timestamp",
        by=keys or None,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,  # both sides are sorted by timestamp (polars cannot check it per group)
    )


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator)


def _smoothed(clicks: pl.Expr, shown: pl.Expr, prior: pl.Expr) -> pl.Expr:
    """``(clicks + w * prior) / (shown + w)``; missing while there is no prior at all."""
    return (clicks + PRIOR_WEIGHT * prior) / (shown + PRIOR_WEIGHT)
