"""Synthetic, realistic recctl data: the simulator behind ``recctl sample``.

The generator writes three NDJSON files (assessments, recommendations, interactions) whose
rows are all valid under the record rules of :mod:`recctl.records`. It simulates:

* users with hidden preferences: a true utility per (assessment, recommendation) made of the
  priority weight of the recommendation's category, its ROI, its effort against the company
  size, the cloud-provider match, compliance overlap and savings against spend, plus a hidden
  per-user taste per category and per-item noise;
* the old system, which scored recommendations with a noisy ``confidence_score`` (rank
  correlated with the true utility at about 0.35, and inflated for "critical" priorities) and
  displayed them ordered by it;
* position bias: slot ``p`` is examined with probability ``(1 + p) ** -0.6`` (logged as the
  ``propensity``), and the funnel view -> click -> save / implement / share / rate, plus
  dismissals of low-utility items, with probabilities rising with the true utility.

Everything is vectorised with numpy per block of assessments and each block is appended to the
files as it is made, so memory stays bounded whatever ``assessments`` is. Same arguments and
seed give byte-identical files.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from recctl import defaults
from recctl.errors import OutputExistsError
from recctl.records import (
    CLOUD_PROVIDERS,
    COMPANY_SIZES,
    INTERACTION_TYPES,
    LEVELS,
    PRIORITIES,
    PRIORITY_CATEGORIES,
    USUAL_CATEGORIES,
    as_utc,
)
from recctl.sample_vocabulary import (
    AGENT_BY_CATEGORY,
    ARCHITECTURE,
    BENEFITS,
    CATEGORY_SEVERITY,
    CATEGORY_SHARES,
    COMPANY_SIZE_SHARES,
    COMPLIANCE,
    COST,
    EFFORT_AVERSION_BY_SIZE,
    FRAMEWORKS,
    INDUSTRIES,
    INDUSTRY_FRAMEWORK_ODDS,
    INDUSTRY_PRIORITY_TILT,
    MEDIAN_BUDGET_BY_SIZE,
    PERFORMANCE,
    PRIMARY_PROVIDER_SHARES,
    PRIMARY_PROVIDERS,
    PROVIDER_PHRASES,
    RELIABILITY,
    RISKS,
    SCALABILITY,
    SECURITY,
    SERVICES,
    TITLES,
    WORKLOAD_TYPES,
)

__all__ = ["SampleSummary", "generate_sample"]

#: Assessments simulated (and written) together; fixed so output never depends on memory.
BLOCK_ASSESSMENTS = 2000

MODEL_VERSION = "confidence-v1"
VARIANT = "control"


#: Shares of 1, 2, 3 and 4 sessions per assessment.
SESSION_COUNT_SHARES = (0.20, 0.30, 0.30, 0.20)
#: Examination probability of slot p is (1 + p) ** -POSITION_BIAS_EXPONENT.
POSITION_BIAS_EXPONENT = 0.6

_MS_PER_SECOND = 1000
_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote.

    Attributes
    ----------
    assessments, recommendations, interactions, users : int
        Row counts (``users`` is the number of distinct ``user_id``).
    assessments_path, recommendations_path, interactions_path : Path
        The files written (``.ndjson`` or ``.ndjson.gz``).
    """

    assessments: int
    recommendations: int
    interactions: int
    users: int
    assessments_path: Path
    recommendations_path: Path
    interactions_path: Path

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        """The three files, in the order assessments, recommendations, interactions."""
        return (self.assessments_path, self.recommendations_path, self.interactions_path)

    def as_json(self) -> dict[str, int | str]:
        return {
            "assessments": self.assessments,
            "recommendations": self.recommendations,
            "interactions": self.interactions,
            "users": self.users,
            "assessments_path": str(self.assessments_path),
            "recommendations_path": str(self.recommendations_path),
            "interactions_path": str(self.interactions_path),
        }


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` when ``out_dir`` cannot take a new sample.

    A missing or empty directory always can; a directory holding anything only with
    ``overwrite`` (the three files are then replaced, other files are left alone); a file never.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} is a file, not a directory")
    if not overwrite and out_dir.is_dir() and any(out_dir.iterdir()):
        raise OutputExistsError(f"{out_dir} is not empty: refusing to overwrite what it holds")


def generate_sample(
    out_dir: Path,
    *,
    assessments: int = defaults.SAMPLE_ASSESSMENTS,
    seed: int = 0,
    start: datetime = defaults.SAMPLE_START,
    days: int = defaults.SAMPLE_DAYS,
    recommendations_per_assessment: tuple[int, int] = (6, 14),
    sessions_per_assessment: tuple[int, int] = (1, 4),
    compress: bool = False,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = True,
) -> SampleSummary:
    """Simulate assessments, their recommendations and users' interactions; write them as NDJSON.

    Parameters
    ----------
    out_dir : Path
        Directory for ``assessments.ndjson``, ``recommendations.ndjson`` and
        ``interactions.ndjson`` (``.ndjson.gz`` when ``compress``). Created if missing; existing
        files of those names are replaced, atomically (each file appears complete or not at all).
    assessments : int
        Number of assessments (query groups), >= 0. About 20 interactions each on average; 0
        writes three empty files.
    seed : int
        Random seed, >= 0. The same arguments and seed give byte-identical files.
    start : datetime
        Start of the simulated window; a naive datetime is taken as UTC.
    days : int
        Length of the window, >= 1. Every ``created_at`` and ``timestamp`` lies in
        ``[start, start + days)``.
    recommendations_per_assessment : tuple[int, int]
        Inclusive range of catalog recommendations per assessment, ``1 <= low <= high <= 100``.
    sessions_per_assessment : tuple[int, int]
        Inclusive range of user sessions per assessment, ``1 <= low <= high <= 4``; more sessions
        mean more interactions per assessment.
    compress : bool
        Write gzip files (``.ndjson.gz``, reproducible: no timestamp in the gzip header).
    progress : callable, optional
        Called as ``progress(done, total)`` with assessment counts after each block (and once
        with ``done=0`` before the first).
    overwrite : bool
        With ``False``, a directory that already holds anything is refused before any work
        (:class:`~recctl.errors.OutputExistsError`), so a data set is never replaced by accident.

    Returns
    -------
    SampleSummary
        Row counts and the paths written.

    Raises
    ------
    ValueError
        If an argument is out of the ranges above.
    OutputExistsError
        If ``out_dir`` is a file, or (without ``overwrite``) a directory that is not empty.

    Examples
    --------
    >>> import tempfile
    >>> summary = generate_sample(Path(tempfile.mkdtemp()), assessments=5, seed=1)
    >>> summary.assessments, summary.recommendations >= 5 * 6
    (5, True)
    """
    _check_arguments(assessments, seed, days, recommendations_per_assessment, sessions_per_assessment)
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    window = _Window.from_start(start, days, max_recommendations=recommendations_per_assessment[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    paths = {name: out_dir / f"{name}{suffix}" for name in ("assessments", "recommendations", "interactions")}

    population = _Population.draw(np.random.default_rng([seed, 0]), assessments)
    counts = {"assessments": 0, "recommendations": 0, "interactions": 0}
    if progress is not None:
        progress(0, assessments)
    with _atomic_outputs(paths, compress) as writers:
        for block_no, first in enumerate(range(0, assessments, BLOCK_ASSESSMENTS)):
            assessment_numbers = np.arange(first, min(first + BLOCK_ASSESSMENTS, assessments))
            block = _simulate_block(
                np.random.default_rng([seed, 1, block_no]),
                assessment_numbers,
                population,
                window,
                recommendations_per_assessment,
                sessions_per_assessment,
            )
            for name, lines in block.items():
                writers[name].write(lines)
                counts[name] += lines.count(b"\n")
            if progress is not None:
                progress(int(assessment_numbers[-1]) + 1, assessments)
    return SampleSummary(
        assessments=counts["assessments"],
        recommendations=counts["recommendations"],
        interactions=counts["interactions"],
        users=population.users_used,
        assessments_path=paths["assessments"],
        recommendations_path=paths["recommendations"],
        interactions_path=paths["interactions"],
    )


def _check_arguments(
    assessments: int,
    seed: int,
    days: int,
    recommendations_per_assessment: tuple[int, int],
    sessions_per_assessment: tuple[int, int],
) -> None:
    if assessments < 0:
        raise ValueError(f"assessments must be >= 0, got {assessments}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    low, high = recommendations_per_assessment
    if not 1 <= low <= high <= 100:
        raise ValueError(
            f"recommendations_per_assessment must satisfy 1 <= low <= high <= 100, got {low}..{high}"
        )
    low, high = sessions_per_assessment
    if not 1 <= low <= high <= len(SESSION_COUNT_SHARES):
        raise ValueError(f"sessions_per_assessment must satisfy 1 <= low <= high <= 4, got {low}..{high}")


@dataclass(frozen=True)
class _Window:
    """The simulated time window in epoch milliseconds."""

    start_ms: int
    end_ms: int
    #: Latest session start: leaves room for a whole session (slots walked, then actions).
    last_session_ms: int

    @classmethod
    def from_start(cls, start: datetime, days: int, *, max_recommendations: int) -> _Window:
        start_utc = as_utc(start)
        start_ms = int(start_utc.timestamp() * _MS_PER_SECOND)
        end_ms = int((start_utc + timedelta(days=days)).timestamp() * _MS_PER_SECOND)
        session_room_ms = 2 * _MS_PER_HOUR + max_recommendations * 12 * _MS_PER_SECOND
        return cls(start_ms, end_ms, end_ms - session_room_ms)


@dataclass(frozen=True)
class _Population:
    """Users and their hidden taste, drawn once for the whole run (small: one row per user)."""

    user_of_assessment: np.ndarray  # user index per assessment number
    taste: np.ndarray  # (users, categories) hidden per-user liking of each category
    users_used: int
    id_width: int

    @classmethod
    def draw(cls, rng: np.random.Generator, assessments: int) -> _Population:
        # Users own 1..3 assessments; cover ``assessments`` and shuffle so owners interleave in time.
        owned = rng.choice([1, 2, 3], size=assessments, p=[0.6, 0.28, 0.12])
        users_used = int(np.searchsorted(np.cumsum(owned), assessments) + 1) if assessments else 0
        user_of_assessment = rng.permutation(
            np.repeat(np.arange(users_used), owned[:users_used])[:assessments]
        )
        taste = rng.normal(0.0, 0.2, size=(users_used, len(USUAL_CATEGORIES)))
        return cls(user_of_assessment, taste, users_used, max(4, len(str(users_used))))


def _simulate_block(
    rng: np.random.Generator,
    assessment_numbers: np.ndarray,
    population: _Population,
    window: _Window,
    recommendations_per_assessment: tuple[int, int],
    sessions_per_assessment: tuple[int, int],
) -> dict[str, bytes]:
    """Simulate one block of assessments; return the NDJSON bytes of each file."""
    assessments = _draw_assessments(rng, assessment_numbers, population, window)
    recommendations = _draw_recommendations(rng, assessments, recommendations_per_assessment)
    utility = _true_utility(rng, assessments, recommendations, population)
    recommendations["confidence_score"] = _old_confidence(rng, utility, recommendations)
    recommendations["position"] = _positions_by_confidence(recommendations)
    interactions = _simulate_interactions(
        rng, assessments, recommendations, utility, window, sessions_per_assessment
    )
    return {
        "assessments": _ndjson(_assessment_frame(assessments, population.id_width)),
        "recommendations": _ndjson(_recommendation_frame(recommendations, assessments)),
        "interactions": _interaction_lines(
            rng, interactions, assessments, recommendations, population.id_width
        ),
    }


# --- assessments -------------------------------------------------------------------------------


def _draw_assessments(
    rng: np.random.Generator, numbers: np.ndarray, population: _Population, window: _Window
) -> dict[str, np.ndarray]:
    n = len(numbers)
    size = rng.choice(len(COMPANY_SIZES), size=n, p=COMPANY_SIZE_SHARES)
    industry = rng.integers(0, len(INDUSTRIES), size=n)
    budget = np.asarray(MEDIAN_BUDGET_BY_SIZE)[size] * rng.lognormal(0.0, 0.5, size=n)
    spend = budget * rng.uniform(0.4, 1.2, size=n)

    priorities = rng.beta(2.0, 2.5, size=(n, len(PRIORITY_CATEGORIES))) + INDUSTRY_PRIORITY_TILT[industry]
    priorities[:, 0] += np.where(size <= 1, 0.15, 0.0)  # small companies watch the bill
    priorities = np.round(np.clip(priorities, 0.0, 1.0), 2)

    frameworks = rng.random((n, len(FRAMEWORKS))) < INDUSTRY_FRAMEWORK_ODDS[industry]
    frameworks[:, 4] |= (size == 4) & (rng.random(n) < 0.3)  # enterprises add ISO27001

    providers = np.zeros((n, len(PRIMARY_PROVIDERS)), dtype=bool)
    providers[np.arange(n), rng.choice(len(PRIMARY_PROVIDERS), size=n, p=PRIMARY_PROVIDER_SHARES)] = True
    providers |= rng.random((n, len(PRIMARY_PROVIDERS))) < (0.08 + 0.06 * size)[:, None]

    workloads = rng.random((n, len(WORKLOAD_TYPES))) < 0.25
    workloads[np.arange(n), rng.integers(0, len(WORKLOAD_TYPES), size=n)] = True

    created_latest = min(
        window.start_ms + int(0.7 * (window.end_ms - window.start_ms)), window.last_session_ms
    )
    created_ms = rng.integers(window.start_ms, created_latest, size=n, endpoint=True)
    created_ms -= created_ms % _MS_PER_SECOND  # catalogs carry whole seconds
    return {
        "number": numbers,
        "user": population.user_of_assessment[numbers],
        "size": size,
        "industry": industry,
        "monthly_budget": np.round(budget, 2),
        "current_monthly_spend": np.round(spend, 2),
        "priorities": priorities,
        "frameworks": frameworks,
        "providers": providers,
        "workloads": workloads,
        "created_ms": created_ms,
    }


def _assessment_frame(assessments: dict[str, np.ndarray], user_id_width: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "assessment_id": _prefixed_ids("asm-", assessments["number"], 6),
            "user_id": _prefixed_ids("user-", assessments["user"], user_id_width),
            "company_size": _lookup(COMPANY_SIZES, assessments["size"]),
            "industry": _lookup(INDUSTRIES, assessments["industry"]),
            "monthly_budget": assessments["monthly_budget"],
            "current_monthly_spend": assessments["current_monthly_spend"],
            "priorities": pl.DataFrame(
                {key: assessments["priorities"][:, j] for j, key in enumerate(PRIORITY_CATEGORIES)}
            ).to_struct(),
            "compliance_requirements": _flags_to_lists(FRAMEWORKS, assessments["frameworks"]),
            "cloud_providers": _flags_to_lists(PRIMARY_PROVIDERS, assessments["providers"]),
            "workload_types": _flags_to_lists(WORKLOAD_TYPES, assessments["workloads"]),
            "created_at": _iso_utc(assessments["created_ms"], milliseconds=False),
        }
    )


# --- recommendations ---------------------------------------------------------------------------


def _draw_recommendations(
    rng: np.random.Generator, assessments: dict[str, np.ndarray], per_assessment: tuple[int, int]
) -> dict[str, np.ndarray]:
    n_assessments = len(assessments["number"])
    list_size = rng.integers(per_assessment[0], per_assessment[1], size=n_assessments, endpoint=True)
    owner = np.repeat(np.arange(n_assessments), list_size)  # block-local assessment index
    first_of_owner = np.cumsum(list_size) - list_size
    slot = np.arange(len(owner)) - first_of_owner[owner]
    n = len(owner)

    category = rng.choice(len(USUAL_CATEGORIES), size=n, p=CATEGORY_SHARES)
    # Provider: mostly one the assessment uses; sometimes "multi", a provider it does not use, or "other".
    providers = assessments["providers"][owner]
    own_pick = _random_true_column(rng, providers)
    other_pick = _random_true_column(rng, ~providers)  # -1 when the assessment uses all three
    provider_kind = rng.choice(4, size=n, p=[0.70, 0.14, 0.10, 0.06])
    provider = np.select(
        [provider_kind == 0, provider_kind == 1, (provider_kind == 2) & (other_pick >= 0)],
        [own_pick, np.full(n, 3), other_pick],
        default=4,
    )

    # Compliance recs always name a framework (often one the assessment needs); security recs sometimes.
    needed = assessments["frameworks"][owner]
    needed_pick = _random_true_column(rng, needed)
    framework = np.where(
        (rng.random(n) < 0.6) & (needed_pick >= 0), needed_pick, rng.integers(0, len(FRAMEWORKS), size=n)
    )
    names_framework = (category == COMPLIANCE) | ((category == SECURITY) & (rng.random(n) < 0.4))
    framework = np.where(names_framework, framework, -1)

    effort = rng.choice(3, size=n, p=[0.35, 0.40, 0.25])
    effort = np.where((category == ARCHITECTURE) & (rng.random(n) < 0.5), 2, effort)  # big work
    spend = assessments["current_monthly_spend"][owner]
    savings_share = np.select(
        [
            category == COST,
            np.isin(category, (PERFORMANCE, SCALABILITY, ARCHITECTURE)) & (rng.random(n) < 0.6),
            rng.random(n) < 0.25,
        ],
        [rng.beta(2.0, 8.0, size=n), rng.beta(1.0, 20.0, size=n), rng.beta(1.0, 40.0, size=n)],
        default=0.0,
    )
    size_cost_scale = np.array([0.5, 0.8, 1.0, 1.5, 2.5])[assessments["size"][owner]]
    cost = np.array([500.0, 3000.0, 15000.0])[effort] * size_cost_scale * rng.lognormal(0.0, 0.5, size=n)
    time_low = np.array([1, 7, 30])[effort]
    time_high = np.array([7, 30, 90])[effort]
    risk = np.clip(effort + rng.choice([-1, 0, 1], size=n, p=[0.25, 0.5, 0.25]), 0, 2)
    # The agents' urgency: 0 below -0.9 .. 3 above 0.9; PRIORITIES runs critical..low, so flip.
    urgency = np.digitize(
        np.asarray(CATEGORY_SEVERITY)[category] + rng.normal(0.0, 1.0, size=n), [-0.9, 0.1, 1.1]
    )
    priority_level = 3 - urgency
    return {
        "owner": owner,
        "slot": slot,
        "category": category,
        "provider": provider,
        "framework": framework,
        "effort": effort,
        "risk": risk,
        "priority": priority_level,
        "roi_potential": np.round(rng.lognormal(np.log(120.0), 0.7, size=n), 1),
        "estimated_monthly_savings": np.round(spend * savings_share, 2),
        "estimated_cost": np.round(cost, 2),
        "implementation_time_days": rng.integers(time_low, time_high, endpoint=True),
        "title_variant": rng.integers(0, 4, size=n),
        "services": _distinct_picks(rng, n, len(SERVICES[0]), 3),
        "service_count": rng.integers(1, 3, size=n, endpoint=True),
        "benefits": _distinct_picks(rng, n, len(BENEFITS[0]), 3),
        "benefit_count": rng.integers(1, 3, size=n, endpoint=True),
        "risks": _distinct_picks(rng, n, len(RISKS), 2),
        "risk_count": rng.integers(1, 2, size=n, endpoint=True),
        "created_ms": assessments["created_ms"][owner] + rng.integers(30, 300, size=n) * _MS_PER_SECOND,
    }


def _recommendation_frame(
    recommendations: dict[str, np.ndarray], assessments: dict[str, np.ndarray]
) -> pl.DataFrame:
    owner = recommendations["owner"]
    category = recommendations["category"]
    provider = recommendations["provider"]
    framework = recommendations["framework"]
    frame = pl.DataFrame(
        {
            "recommendation_id": _recommendation_ids(assessments["number"][owner], recommendations["slot"]),
            "assessment_id": _prefixed_ids("asm-", assessments["number"][owner], 6),
            "category": _lookup(USUAL_CATEGORIES, category),
            "confidence_score": recommendations["confidence_score"],
            "title_base": _lookup(
                [title for titles in TITLES for title in titles],
                category * 4 + recommendations["title_variant"],
            ),
            "framework": _lookup((*FRAMEWORKS, None), np.where(framework >= 0, framework, len(FRAMEWORKS))),
            "priority": _lookup(PRIORITIES, recommendations["priority"]),
            "roi_potential": recommendations["roi_potential"],
            "estimated_monthly_savings": recommendations["estimated_monthly_savings"],
            "estimated_cost": recommendations["estimated_cost"],
            "implementation_effort": _lookup(LEVELS, recommendations["effort"]),
            "implementation_time_days": recommendations["implementation_time_days"],
            "risk_level": _lookup(LEVELS, recommendations["risk"]),
            "cloud_provider": _lookup(CLOUD_PROVIDERS, provider),
            "provider_phrase": _lookup(PROVIDER_PHRASES, provider),
            "services": _picked_lists(
                [service for services in SERVICES for service in services],
                provider[:, None] * len(SERVICES[0]) + recommendations["services"],
                recommendations["service_count"],
            ),
            "benefits": _picked_lists(
                [benefit for benefits in BENEFITS for benefit in benefits],
                category[:, None] * len(BENEFITS[0]) + recommendations["benefits"],
                recommendations["benefit_count"],
            ),
            "risks": _picked_lists(RISKS, recommendations["risks"], recommendations["risk_count"]),
            "agent_name": _lookup(AGENT_BY_CATEGORY, category),
            "quick_win": recommendations["effort"] == 0,
            "created_at": _iso_utc(recommendations["created_ms"], milliseconds=False),
        }
    )
    framework_text = pl.when(pl.col("framework").is_not_null()).then(pl.lit(" (") + pl.col("framework") + ")")
    title = pl.concat_str([pl.col("title_base"), framework_text], ignore_nulls=True)
    return frame.select(
        "recommendation_id",
        "assessment_id",
        "category",
        "confidence_score",
        title.alias("title"),
        pl.concat_str(
            [
                pl.col("title_base"),
                pl.lit(" on ")
                + pl.col("provider_phrase")
                + pl.lit(" to get ")
                + pl.col("benefits").list.first(),
            ]
        )
        .add(".")
        .alias("description"),
        "priority",
        "roi_potential",
        "estimated_monthly_savings",
        "estimated_cost",
        "implementation_effort",
        "implementation_time_days",
        "risk_level",
        "cloud_provider",
        "services",
        pl.concat_list(
            pl.col("category"),
            pl.col("cloud_provider"),
            pl.col("framework"),
            pl.when(pl.col("quick_win")).then(pl.lit("quick-win")),
        )
        .list.drop_nulls()
        .alias("tags"),
        "benefits",
        "risks",
        "agent_name",
        "created_at",
    )


# --- the hidden utility and the old system's view of it ----------------------------------------


def _true_utility(
    rng: np.random.Generator,
    assessments: dict[str, np.ndarray],
    recommendations: dict[str, np.ndarray],
    population: _Population,
) -> np.ndarray:
    """The hidden utility of each recommendation to its assessment's user (about N(0, 1) scale).

    Observable part (a model can learn it from recommendation and assessment fields):
    ``1.8 * (w - 0.5)`` for the priority weight ``w`` of the category (architecture: mean of
    performance and scalability, monitoring: reliability); ``0.4 * z(log ROI)``; ``-aversion(size)
    * effort``; provider match (+0.3 a provider the assessment uses, +0.25 / -0.15 "multi" for
    multi- / single-cloud assessments, -0.6 otherwise); for compliance and security recs naming
    a framework, +0.6 when the assessment requires it else -0.5 (compliance) / -0.2 (security);
    ``2 * min(savings / spend, 0.25)``. Hidden part: per-user category taste N(0, 0.2) and
    per-item noise N(0, 0.3). Standard deviation about 0.9 overall.
    """
    owner = recommendations["owner"]
    category = recommendations["category"]
    priorities = assessments["priorities"][owner]
    # USUAL_CATEGORIES order: the six weights given, then architecture and monitoring derived from them.
    weights = np.column_stack(
        [priorities, priorities[:, [PERFORMANCE, SCALABILITY]].mean(axis=1), priorities[:, RELIABILITY]]
    )
    category_weight = weights[np.arange(len(category)), category]

    roi_z = (np.log(recommendations["roi_potential"]) - np.log(120.0)) / 0.7
    effort_penalty = (
        np.asarray(EFFORT_AVERSION_BY_SIZE)[assessments["size"][owner]] * recommendations["effort"]
    )

    provider = recommendations["provider"]
    uses = assessments["providers"][owner]
    is_multi = provider == CLOUD_PROVIDERS.index("multi")
    single = provider < len(PRIMARY_PROVIDERS)  # aws, azure or gcp
    uses_rec_provider = single & uses[np.arange(len(provider)), np.where(single, provider, 0)]
    multi_cloud = uses.sum(axis=1) >= 2
    provider_term = np.select(
        [uses_rec_provider, is_multi & multi_cloud, is_multi], [0.3, 0.25, -0.15], default=-0.6
    )

    framework = recommendations["framework"]
    required = assessments["frameworks"][owner][np.arange(len(framework)), np.maximum(framework, 0)]
    compliance_term = np.select(
        [(framework >= 0) & required, (framework >= 0) & (category == COMPLIANCE), framework >= 0],
        [0.6, -0.5, -0.2],
        default=0.0,
    )
    spend = np.maximum(assessments["current_monthly_spend"][owner], 1.0)
    savings_term = 2.0 * np.minimum(recommendations["estimated_monthly_savings"] / spend, 0.25)

    taste = population.taste[assessments["user"][owner], category]
    noise = rng.normal(0.0, 0.3, size=len(category))
    return (
        1.8 * (category_weight - 0.5)
        + 0.4 * roi_z
        - effort_penalty
        + provider_term
        + compliance_term
        + savings_term
        + taste
        + noise
    )


def _old_confidence(
    rng: np.random.Generator, utility: np.ndarray, recommendations: dict[str, np.ndarray]
) -> np.ndarray:
    """The old system's ``confidence_score``: a noisy, biased view of the utility, in (0, 1).

    Rank correlation with the utility is about 0.35 (0.3 within a list); critical/high priorities are inflated
    whatever their utility (a bias a model can learn to discount).
    """
    priority_boost = np.array([0.8, 0.4, 0.0, -0.3])[recommendations["priority"]]
    latent = 0.5 * utility + priority_boost + rng.normal(0.0, 1.0, size=len(utility))
    return np.round(0.3 + 0.68 / (1.0 + np.exp(-1.2 * latent)), 4)


def _positions_by_confidence(recommendations: dict[str, np.ndarray]) -> np.ndarray:
    """0-based slot of each recommendation in its list ordered by confidence (ties: catalog order)."""
    owner = recommendations["owner"]
    order = np.lexsort((recommendations["slot"], -recommendations["confidence_score"], owner))
    position = np.empty(len(order), dtype=np.int64)
    position[order] = recommendations["slot"]  # slots run 0..k-1 per owner, as ranks do
    return position


# --- interactions ------------------------------------------------------------------------------


def _simulate_interactions(
    rng: np.random.Generator,
    assessments: dict[str, np.ndarray],
    recommendations: dict[str, np.ndarray],
    utility: np.ndarray,
    window: _Window,
    sessions_per_assessment: tuple[int, int],
) -> pl.DataFrame:
    """Simulate sessions over each assessment's list; one row per interaction event.

    Every session walks the list in confidence order; slot ``p`` is examined with probability
    ``(1 + p) ** -0.6``. Examined -> view (seconds ~ lognormal, median 10 * exp(0.6 u));
    click with probability sigmoid(-1.2 + 2 u); after a click save sigmoid(-1.8 + 1.6 u),
    implement sigmoid(-2.3 + 2.2 u), share sigmoid(-2.8 + 1.2 u), rate 0.25 (stars: 3 + 1.3 u
    + noise, rounded into 1..5); examined but not clicked -> dismiss with probability
    0.4 * sigmoid(-1.5 - 2 u). Sessions are independent, so an item dismissed once may be
    implemented later (rarely). An item is implemented at most once.
    """
    n_assessments = len(assessments["number"])
    low, high = sessions_per_assessment
    shares = np.asarray(SESSION_COUNT_SHARES[low - 1 : high])
    session_count = rng.choice(np.arange(low, high + 1), size=n_assessments, p=shares / shares.sum())
    session_owner = np.repeat(np.arange(n_assessments), session_count)
    session_no = np.arange(len(session_owner)) - (np.cumsum(session_count) - session_count)[session_owner]
    # Sessions start once the recommendations exist (they are created within 5 minutes of the
    # assessment): the first within two days, later ones anywhere until the window closes.
    earliest_ms = assessments["created_ms"][session_owner] + 10 * 60 * _MS_PER_SECOND
    first_session_ms = earliest_ms + rng.integers(0, 48 * _MS_PER_HOUR, size=len(earliest_ms))
    later_session_ms = rng.integers(
        earliest_ms, np.maximum(window.last_session_ms, earliest_ms), endpoint=True
    )
    session_start_ms = np.minimum(
        np.where(session_no == 0, first_session_ms, later_session_ms), window.last_session_ms
    )

    # One row per (session, recommendation of its assessment's list).
    list_size = np.bincount(recommendations["owner"], minlength=n_assessments)
    first_rec = np.cumsum(list_size) - list_size
    pairs_per_session = list_size[session_owner]
    pair_session = np.repeat(np.arange(len(session_owner)), pairs_per_session)
    pair_rec = (
        np.arange(len(pair_session))
        - np.repeat(np.cumsum(pairs_per_session) - pairs_per_session, pairs_per_session)
        + first_rec[session_owner][pair_session]
    )
    position = recommendations["position"][pair_rec]
    u = utility[pair_rec]
    n_pairs = len(pair_rec)

    examined = rng.random(n_pairs) < _examination_probability(position)
    clicked = examined & (rng.random(n_pairs) < _sigmoid(-1.2 + 2.0 * u))
    saved = clicked & (rng.random(n_pairs) < _sigmoid(-1.8 + 1.6 * u))
    implemented = clicked & (rng.random(n_pairs) < _sigmoid(-2.3 + 2.2 * u))
    shared = clicked & (rng.random(n_pairs) < _sigmoid(-2.8 + 1.2 * u))
    rated = clicked & (rng.random(n_pairs) < 0.25)
    dismissed = examined & ~clicked & (rng.random(n_pairs) < 0.4 * _sigmoid(-1.5 - 2.0 * u))

    view_ms = session_start_ms[pair_session] + position * rng.integers(3, 12, size=n_pairs) * _MS_PER_SECOND
    view_ms += rng.integers(0, _MS_PER_SECOND, size=n_pairs)
    click_ms = view_ms + rng.integers(1 * _MS_PER_SECOND, 10 * _MS_PER_SECOND, size=n_pairs)
    seconds_viewed = np.round(np.minimum(rng.lognormal(np.log(10.0) + 0.6 * u, 0.6), 600.0), 1)
    stars = np.clip(np.rint(3.0 + 1.3 * u + rng.normal(0.0, 0.6, size=n_pairs)), 1, 5).astype(np.int64)

    def seconds_after(base_ms: np.ndarray, low_s: int, high_s: int) -> np.ndarray:
        return base_ms + rng.integers(low_s * _MS_PER_SECOND, high_s * _MS_PER_SECOND, size=n_pairs)

    # Event kinds in INTERACTION_TYPES order, each with its pairs and time.
    happened_by_kind = (examined, clicked, implemented, saved, shared, rated, dismissed)
    time_by_kind = (
        view_ms,
        click_ms,
        seconds_after(click_ms, 60, 1800),
        seconds_after(click_ms, 5, 60),
        seconds_after(click_ms, 10, 120),
        seconds_after(click_ms, 20, 300),
        seconds_after(view_ms, 1, 6),
    )
    event_pair = np.concatenate([np.flatnonzero(happened) for happened in happened_by_kind])
    event_kind = np.repeat(np.arange(len(INTERACTION_TYPES)), [int(h.sum()) for h in happened_by_kind])
    event_ms = np.concatenate(
        [at[happened] for happened, at in zip(happened_by_kind, time_by_kind, strict=True)]
    )
    interactions = pl.DataFrame(
        {
            "kind": event_kind,
            "timestamp_ms": event_ms,
            "pair": event_pair,
            "rec": pair_rec[event_pair],
            "owner": session_owner[pair_session[event_pair]],
            "session_no": session_no[pair_session[event_pair]],
            "position": position[event_pair],
            "seconds_viewed": seconds_viewed[event_pair],
            "stars": stars[event_pair],
        }
    ).sort("timestamp_ms", "pair", "kind")
    # An item is implemented once: a later implement of the same item (another session) is dropped.
    is_implement = pl.col("kind") == INTERACTION_TYPES.index("implement")
    repeated_implement = is_implement & (pl.int_range(pl.len()).over("rec", "kind") > 0)
    return interactions.filter(~repeated_implement)


def _examination_probability(position: np.ndarray) -> np.ndarray:
    return (1.0 + position) ** -POSITION_BIAS_EXPONENT


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _interaction_lines(
    rng: np.random.Generator,
    interactions: pl.DataFrame,
    assessments: dict[str, np.ndarray],
    recommendations: dict[str, np.ndarray],
    user_id_width: int,
) -> bytes:
    """Render interactions as NDJSON; optional keys are left out (not written as null) when absent.

    About 70% of rows carry an ``event_id``; ``assessment_id`` is at the top level in about half
    of the rows and inside ``context`` in the others; about 2% spell the interaction type
    untidily (``" View"``, ``"CLICK "``), which the record rules accept.
    """
    n = interactions.height
    if n == 0:
        return b""
    owner = interactions["owner"].to_numpy()
    numbers = assessments["number"][owner]
    kind = interactions["kind"].to_numpy()
    position = interactions["position"].to_numpy()
    has_event_id = rng.random(n) < 0.7
    top_level_assessment = rng.random(n) < 0.5
    untidy_type = rng.random(n) < 0.02
    untidy_style = rng.integers(0, 3, size=n)
    # 16 hex digits per event: the random words' bytes as one hex string, cut in fixed widths.
    event_hex = np.frombuffer(
        rng.integers(0, 2**63, size=n).astype(">u8").tobytes().hex().encode(), dtype="S16"
    )
    assessment_ids = _prefixed_ids("asm-", numbers, 6)
    is_view = kind == INTERACTION_TYPES.index("view")
    is_rate = kind == INTERACTION_TYPES.index("rate")
    fields = pl.DataFrame(
        [
            pl.Series("event_hex", event_hex).cast(pl.String),
            pl.Series("has_event_id", has_event_id),
            _recommendation_ids(numbers, recommendations["slot"][interactions["rec"].to_numpy()]).alias(
                "recommendation_id"
            ),
            _prefixed_ids("user-", assessments["user"][owner], user_id_width).alias("user_id"),
            assessment_ids.alias("assessment_id"),
            pl.Series("top_level_assessment", top_level_assessment),
            _lookup(INTERACTION_TYPES, kind).alias("interaction_type"),
            pl.Series("untidy_type", untidy_type),
            pl.Series("untidy_style", untidy_style),
            pl.Series("seconds_viewed", np.where(is_view, interactions["seconds_viewed"].to_numpy(), np.nan)),
            pl.Series("stars", interactions["stars"].to_numpy()),
            pl.Series("is_rate", is_rate),
            _iso_utc(interactions["timestamp_ms"].to_numpy(), milliseconds=True).alias("timestamp"),
            (
                "ses-"
                + assessment_ids.str.strip_prefix("asm-")
                + "-"
                + pl.Series(interactions["session_no"].to_numpy() + 1).cast(pl.String)
            ).alias("session_id"),
            pl.Series("position", position),
            pl.Series("propensity", np.round(_examination_probability(position), 4)),
        ]
    ).with_columns(
        pl.when("has_event_id").then("evt-" + pl.col("event_hex")).alias("event_id"),
        pl.when("untidy_type")
        .then(_untidy_spelling(pl.col("interaction_type"), pl.col("untidy_style")))
        .otherwise("interaction_type")
        .alias("interaction_type"),
        pl.col("seconds_viewed").fill_nan(None),
        pl.when("is_rate").then("stars").alias("stars"),
        pl.when("top_level_assessment").then("assessment_id").alias("top_assessment_id"),
        pl.when(~pl.col("top_level_assessment")).then("assessment_id").alias("context_assessment_id"),
    )
    context = pl.concat_str(
        [
            _json_member("session_id"),
            _json_member("context_assessment_id", "assessment_id"),
            _json_member("position"),
            _json_member("propensity"),
            pl.lit(f'"model_version":"{MODEL_VERSION}","variant":"{VARIANT}"'),
        ],
        separator=",",
        ignore_nulls=True,
    )
    members = pl.concat_str(
        [
            _json_member("event_id"),
            _json_member("recommendation_id"),
            _json_member("user_id"),
            _json_member("top_assessment_id", "assessment_id"),
            _json_member("interaction_type"),
            _json_member("seconds_viewed", "interaction_value"),
            _json_member("stars", "interaction_value"),
            _json_member("timestamp"),
            '"context":{' + context + pl.lit("}"),
        ],
        separator=",",
        ignore_nulls=True,
    )
    text = fields.select(("{" + members + pl.lit("}")).str.join("\n")).item()
    return (text + "\n").encode()


def _json_member(column: str, key: str | None = None) -> pl.Expr:
    """``"key":<json value>`` for each row of ``column``, null where the value is null (key left out)."""
    value = pl.col(column)
    encoded = pl.struct(value.alias(key or column)).struct.json_encode()
    return pl.when(value.is_not_null()).then(encoded.str.strip_prefix("{").str.strip_suffix("}"))


def _untidy_spelling(interaction_type: pl.Expr, style: pl.Expr) -> pl.Expr:
    """Valid but untidy spellings (" View", "CLICK ", "Save") as sent by careless clients."""
    capitalised = interaction_type.str.to_titlecase()
    return (
        pl.when(style == 0)
        .then(pl.lit(" ") + capitalised)
        .when(style == 1)
        .then(interaction_type.str.to_uppercase() + pl.lit(" "))
        .otherwise(capitalised)
    )


# --- small vectorised helpers ------------------------------------------------------------------


def _lookup(vocabulary: tuple[str | None, ...] | list[str], index: np.ndarray) -> pl.Series:
    return pl.Series(list(vocabulary), dtype=pl.String).gather(np.asarray(index, dtype=np.int64))


def _prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return prefix + pl.Series(np.asarray(numbers, dtype=np.int64) + 1).cast(pl.String).str.zfill(width)


def _recommendation_ids(assessment_numbers: np.ndarray, slots: np.ndarray) -> pl.Series:
    """``rec-<assessment number>-<slot>``, e.g. ``rec-000123-07`` (both 1-based)."""
    slot_text = pl.Series(np.asarray(slots, dtype=np.int64) + 1).cast(pl.String).str.zfill(2)
    return _prefixed_ids("rec-", assessment_numbers, 6) + "-" + slot_text


def _random_true_column(rng: np.random.Generator, flags: np.ndarray) -> np.ndarray:
    """Per row, the index of a uniformly chosen True column; -1 for rows with none."""
    scores = np.where(flags, rng.random(flags.shape), -1.0)
    pick = scores.argmax(axis=1)
    return np.where(flags.any(axis=1), pick, -1)


def _distinct_picks(rng: np.random.Generator, rows: int, pool: int, k: int) -> np.ndarray:
    """``rows`` x ``k`` distinct indices into a pool of ``pool`` items."""
    return np.argsort(rng.random((rows, pool)), axis=1)[:, :k]


def _picked_lists(vocabulary: tuple[str, ...] | list[str], index: np.ndarray, count: np.ndarray) -> pl.Series:
    """Lists of ``vocabulary[index[row, :count[row]]]``."""
    words = _lookup(vocabulary, index.ravel()).to_numpy().reshape(index.shape)
    columns = {f"item{j}": words[:, j] for j in range(index.shape[1])}
    return (
        pl.DataFrame({**columns, "count": count})
        .select(pl.concat_list(list(columns)).list.head(pl.col("count")))
        .to_series()
    )


def _flags_to_lists(vocabulary: tuple[str, ...], flags: np.ndarray) -> pl.Series:
    """Per row, the list of vocabulary words whose flag is set (vocabulary order; may be empty)."""
    columns = {word: flags[:, j] for j, word in enumerate(vocabulary)}
    return (
        pl.DataFrame(columns)
        .select(
            pl.concat_list(
                [pl.when(pl.col(word)).then(pl.lit(word)) for word in vocabulary]
            ).list.drop_nulls()
        )
        .to_series()
    )


def _iso_utc(epoch_ms: np.ndarray, *, milliseconds: bool) -> pl.Series:
    pattern = "%Y-%m-%dT%H:%M:%S%.3fZ" if milliseconds else "%Y-%m-%dT%H:%M:%SZ"
    return pl.from_epoch(pl.Series(np.asarray(epoch_ms, dtype=np.int64)), time_unit="ms").dt.to_string(
        pattern
    )


def _ndjson(frame: pl.DataFrame) -> bytes:
    if frame.height == 0:
        return b""
    return frame.write_ndjson().encode()


@contextmanager
def _atomic_outputs(paths: dict[str, Path], compress: bool) -> Iterator[dict[str, BinaryIO | gzip.GzipFile]]:
    """Writable files that replace ``paths`` only when the block exits without error.

    Each output is written to a hidden temporary file beside its target and renamed into place at
    the end, so a reader never sees a half-written file and a failed run leaves the old files.
    """
    temporary = {name: path.with_name(f".{path.name}.{os.getpid()}.tmp") for name, path in paths.items()}
    try:
        with ExitStack() as stack:
            writers: dict[str, BinaryIO | gzip.GzipFile] = {}
            for name, temporary_path in temporary.items():
                raw = stack.enter_context(open(temporary_path, "wb"))
                # filename="" and mtime=0 keep names and times out of the gzip header: reproducible bytes.
                writers[name] = (
                    stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
                    if compress
                    else raw
                )
            yield writers
    except BaseException:
        for temporary_path in temporary.values():
            temporary_path.unlink(missing_ok=True)
        raise
    for name, temporary_path in temporary.items():
        os.replace(temporary_path, paths[name])
