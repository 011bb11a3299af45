"""Synthetic, realistic recctl data: the simulator behind ``recctl sample``.

The generator writes four NDJSON files (assessments, recommendations, interactions and
impressions, the served lists) whose rows are all valid under the record rules of
:mod:`recctl.records`, and optionally the truth behind them. It simulates:

* users with hidden preferences: a true utility per (assessment, recommendation) made of the
  priority weight of the recommendation's category, its ROI, its effort against the company
  size, the cloud-provider match, compliance overlap and savings against spend, plus a hidden
  per-user taste per category and per-item noise;
* the old system, which scored recommendations with a noisy ``confidence_score`` (rank
  correlated with the true utility at about 0.35, and inflated for "critical" priorities) and
  served each session's list ordered by it; or, with ``explore="plackett-luce"``, a randomised
  order drawn from softmax(confidence_score / temperature), logging the policy's exact
  propensities;
* what the frontend logs: a view for each recommendation on the session's first screen (its first
  6 to 10 slots), all with the screen's dwell time, whatever the user looked at;
* position bias: the user examines slot ``p`` with a probability given by the examination curve
  (default ``(1 + p) ** -0.6``), which no log records; examination shows only through the funnel
  click -> save / implement / share / rate, and dismissals of examined low-utility items, with
  probabilities rising with the true utility.

Everything is vectorised with numpy per block of assessments and each block is appended to the
files as it is made, so memory stays bounded whatever ``assessments`` is. Same arguments and
seed give byte-identical files.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Literal

import numpy as np
import polars as pl

from recctl import defaults, propensities
from recctl.errors import OutputExistsError
from recctl.exploration import EXACT_UP_TO
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

if TYPE_CHECKING:
    from recctl.exploration import PolicyLists
    from recctl.ranking import Ranker, RankOptions

__all__ = [
    "ExaminationCurve",
    "RankerServing",
    "SampleSummary",
    "click_probability",
    "generate_sample",
    "implement_probability",
    "truth_examination_path",
    "truth_rewards_path",
]

#: Assessments simulated (and written) together; fixed so output never depends on memory.
BLOCK_ASSESSMENTS = 2000

MODEL_VERSION = "confidence-v1"
VARIANT = "control"

EXPLORE_POLICIES = ("plackett-luce",)
"""The randomised logging policies ``explore`` can name (none: the deterministic confidence order)."""
DEFAULT_TEMPERATURE = 0.2
"""Plackett-Luce temperature on ``confidence_score`` (0.3..0.98): a gap of 0.1 in confidence makes
an item e ** 0.5 (1.65) times likelier to be drawn first. Lists stay around the confidence order
(rank correlation about 0.55 with it) while low-confidence items reach the top slots often
enough for inverse-propensity estimates to stay steady (at 0.1 the correlation is 0.78 and
those estimates are about twice as noisy)."""
EXACT_PROPENSITIES_UP_TO = 14
"""Lists up to this long get exact marginal propensities (the default sample's longest list)."""

#: Shares of 1, 2, 3 and 4 sessions per assessment.
SESSION_COUNT_SHARES = (0.20, 0.30, 0.30, 0.20)
#: Slots on a session's first screen: uniform in this inclusive range (cut to the list's length).
PAGE_SLOTS = (6, 10)
#: Share of interactions whose context names their list's request_id (the others are linked by time).
REQUEST_ID_SHARE = 0.8
GRADE_CUTS = (-0.25, 0.35, 0.85, 1.35)
"""Truth grades: utility below -0.25 is grade 0, then 1 up to 0.35, 2 up to 0.85, 3 up to 1.35,
and 4 above (about 33%, 27%, 20%, 12% and 7% of recommendations)."""

_MS_PER_SECOND = 1000
_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class ExaminationCurve:
    """The probability that a user examines each slot of a list (slot 0 first).

    Named curves: ``default`` ``(1 + p) ** -0.6``; ``steep`` ``(1 + p) ** -1.2``; ``cliff`` 1.0 for
    slots 0..3 and 0.1 from slot 4 on. Or any per-position probabilities in (0, 1]; positions
    past the last one take its value.

    Examples
    --------
    >>> ExaminationCurve.parse("cliff").at(np.arange(6)).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.1, 0.1]
    >>> ExaminationCurve.parse("0.9, 0.5").at(np.array([0, 1, 7])).tolist()
    [0.9, 0.5, 0.5]
    """

    description: str
    exponent: float | None = None
    probabilities: tuple[float, ...] = ()

    NAMES: ClassVar[tuple[str, ...]] = ("default", "steep", "cliff")

    @classmethod
    def parse(cls, spec: str | Sequence[float] | ExaminationCurve) -> ExaminationCurve:
        """A curve from a name, comma-separated probabilities, or a sequence of probabilities.

        Raises
        ------
        ValueError
            If ``spec`` names no curve, or a probability is not in (0, 1].
        """
        if isinstance(spec, ExaminationCurve):
            return spec
        if isinstance(spec, str):
            name = spec.strip().lower()
            if name == "default":
                return cls("(1 + p) ** -0.6", exponent=0.6)
            if name == "steep":
                return cls("(1 + p) ** -1.2", exponent=1.2)
            if name == "cliff":
                return cls("cliff: 1.0 at slots 0-3, 0.1 from slot 4", probabilities=(1.0,) * 4 + (0.1,))
            try:
                spec = [float(part) for part in name.split(",")]
            except ValueError:
                raise ValueError(
                    "examination: expected default, steep, cliff or comma-separated probabilities,"
                    f" got {spec!r}"
                ) from None
        probabilities = tuple(float(value) for value in spec)
        if not probabilities or not all(0.0 < value <= 1.0 for value in probabilities):
            raise ValueError(f"examination: probabilities must be in (0, 1], got {list(probabilities)}")
        return cls(f"per position: {list(probabilities)}", probabilities=probabilities)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The examination probability of each 0-based position."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.exponent is not None:
            return (1.0 + positions) ** -self.exponent
        table = np.asarray(self.probabilities)
        return table[np.minimum(positions, len(table) - 1)]

    def as_json(self, slots: int) -> dict[str, object]:
        """``{"curve", "positions": [{"position", "examination", "relative"}, ...]}`` for ``slots`` slots."""
        examination = self.at(np.arange(slots))
        return {
            "curve": self.description,
            "positions": [
                {"position": p, "examination": float(value), "relative": float(value / examination[0])}
                for p, value in enumerate(examination)
            ],
        }


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote.

    Attributes
    ----------
    assessments, recommendations, interactions, impressions, users : int
        Row counts (``impressions`` is the number of served lists, one per session; ``users`` the
        number of distinct ``user_id``).
    assessments_path, recommendations_path, interactions_path, impressions_path : Path
        The files written (``.ndjson`` or ``.ndjson.gz``).
    policy : str
        The logging policy: ``deterministic``, ``plackett-luce``, ``epsilon-greedy`` or
        ``team-draft``.
    truth_path : Path or None
        The truth file (and its ``.examination.json`` sibling), when one was asked for.
    rewards_path : Path or None
        The policies' true expected rewards (``.rewards.json`` beside the truth), when written.
    """

    assessments: int
    recommendations: int
    interactions: int
    impressions: int
    users: int
    assessments_path: Path
    recommendations_path: Path
    interactions_path: Path
    impressions_path: Path
    policy: str = "deterministic"
    truth_path: Path | None = None
    rewards_path: Path | None = None

    @property
    def paths(self) -> tuple[Path, Path, Path, Path]:
        """The four data files: assessments, recommendations, interactions, impressions."""
        return (
            self.assessments_path,
            self.recommendations_path,
            self.interactions_path,
            self.impressions_path,
        )

    def as_json(self) -> dict[str, int | str | None]:
        return {
            "assessments": self.assessments,
            "recommendations": self.recommendations,
            "interactions": self.interactions,
            "impressions": self.impressions,
            "users": self.users,
            "policy": self.policy,
            "assessments_path": str(self.assessments_path),
            "recommendations_path": str(self.recommendations_path),
            "interactions_path": str(self.interactions_path),
            "impressions_path": str(self.impressions_path),
            "truth_path": None if self.truth_path is None else str(self.truth_path),
            "rewards_path": None if self.rewards_path is None else str(self.rewards_path),
        }


def truth_examination_path(truth: Path) -> Path:
    """The examination curve beside a truth file: ``truth.ndjson`` -> ``truth.examination.json``."""
    truth = Path(truth)
    stem = truth.name[: -len(".ndjson")] if truth.name.endswith(".ndjson") else truth.name
    return truth.with_name(f"{stem}.examination.json")


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` when ``out_dir`` cannot take a new sample.

    A missing or empty directory always can; a directory holding anything only with
    ``overwrite`` (the four files are then replaced, other files are left alone); a file never.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} is a file, not a directory")
    if not overwrite and out_dir.is_dir() and any(out_dir.iterdir()):
        raise OutputExistsError(f"{out_dir} is not empty: refusing to overwrite what it holds")


@dataclass(frozen=True)
class _Serving:
    """How each session's list is ordered: the confidence order, or Plackett-Luce around it."""

    explore: str | None
    temperature: float

    @property
    def policy(self) -> str:
        return self.explore or "deterministic"

    def reward_policies(self) -> list[tuple[str, str]]:
        """The (name, policy) of each policy the truth's expected rewards are written for."""
        return [("all", self.policy)]


CONFIDENCE = "confidence"
"""The policy source that names rank without a model: the confidence order (with rank's MMR)."""
INTERLEAVED_VARIANT = "interleaved"
"""The ``variant`` of team-draft interleaved lists."""


@dataclass(frozen=True)
class RankerServing:
    """Serve every session's list through recctl's ranker, exactly as ``recctl rank`` would.

    Each list's candidates (its assessment's recommendations, with the assessment) go through
    the features and the ranker of ``rank``; its random stream, when the policy explores, is
    seeded by ``list_seed(seed, request_id)`` as ``rank --seed`` seeds it, never by the
    simulator's own streams, so the simulated world (assessments, recommendations, hidden
    utilities, sessions) is the same for every policy given the same seed.

    Attributes
    ----------
    policies : tuple of (str, str or Path)
        ``(name, source)`` pairs: the name goes into the impressions' ``variant``; the source
        is ``"confidence"`` (rank without a model) or a model file. One pair: every list.
        Several: users (not lists) are split between them by a seeded hash of the user (an A/B
        test). Two with ``interleave``: every list team-draft interleaves the two (teams ``A``
        and ``B`` in this order).
    split : tuple of float, optional
        With several policies, each one's share of the users: positive weights, normalised
        (``(90, 10)`` and ``(0.9, 0.1)`` are the same). Default: equal shares.
    interleave : bool
        Team-draft interleave the two policies' lists instead of splitting users.
    options : RankOptions, optional
        rank's options (``lambda_``, ``diversity``, ``top_k``, ``explore``); default rank's.
    """

    policies: tuple[tuple[str, str | Path], ...]
    split: tuple[float, ...] | None = None
    interleave: bool = False
    options: RankOptions | None = None


def generate_sample(
    out_dir: Path,
    *,
    assessments: int = defaults.SAMPLE_ASSESSMENTS,
    seed: int = 0,
    start: datetime = defaults.SAMPLE_START,
    days: int = defaults.SAMPLE_DAYS,
    recommendations_per_assessment: tuple[int, int] = (6, 14),
    sessions_per_assessment: tuple[int, int] = (1, 4),
    explore: str | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    examination: str | Sequence[float] | ExaminationCurve = "default",
    truth: Path | None = None,
    compress: bool = False,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = True,
    serve: RankerServing | None = None,
    first_assessment: int = 0,
    world_assessments: int | None = None,
) -> SampleSummary:
    """Simulate assessments, their recommendations, served lists and users' interactions; write NDJSON.

    Parameters
    ----------
    out_dir : Path
        Directory for ``assessments.ndjson``, ``recommendations.ndjson``,
        ``interactions.ndjson`` and ``impressions.ndjson`` (``.ndjson.gz`` when ``compress``).
        Created if missing; existing files of those names are replaced, atomically (each file
        appears complete or not at all).
    assessments : int
        Number of assessments (query groups), >= 0. About 28 interactions and 2.5 served lists
        each on average; 0 writes four empty files.
    seed : int
        Random seed, >= 0. The same arguments and seed give byte-identical files.
    start : datetime
        Start of the simulated window; a naive datetime is taken as UTC.
    days : int
        Length of the window, >= 1. Every ``created_at`` and ``timestamp`` lies in
        ``[start, start + days)``.
    recommendations_per_assessment : tuple[int, int]
        Inclusive range of catalog recommendations per assessment, ``1 <= low <= high <= 100``.
        Every session is served all of its assessment's recommendations.
    sessions_per_assessment : tuple[int, int]
        Inclusive range of user sessions per assessment, ``1 <= low <= high <= 4``; each session
        is one served list (one impression) and its interactions.
    explore : str, optional
        ``None``: every list in confidence order (policy ``deterministic``, propensity 1.0).
        ``"plackett-luce"``: each session's list drawn from softmax(confidence_score /
        ``temperature``), logging each item's exact ``prefix_propensity`` and marginal
        ``propensity`` (exact for lists up to 14 items, Monte Carlo above). This is the
        simulator's own exploration; to explore as ``rank --explore`` does, give ``serve``
        with ``options.explore`` instead (``explore`` must then be None).
    temperature : float
        The Plackett-Luce temperature, > 0 (lower: closer to the confidence order).
    examination : str, sequence of float or ExaminationCurve
        The users' examination curve (see :class:`ExaminationCurve`): ``"default"``,
        ``"steep"``, ``"cliff"`` or per-position probabilities.
    truth : Path, optional
        Also write the truth: one NDJSON line per recommendation (``recommendation_id``,
        ``assessment_id``, ``utility``, ``grade`` 0..4 cut at :data:`GRADE_CUTS`) to ``truth``,
        the examination curve to :func:`truth_examination_path` of it, and each policy's true
        expected reward to :func:`truth_rewards_path` of it (see :func:`write_rewards`).
    compress : bool
        Write gzip files (``.ndjson.gz``, reproducible: no timestamp in the gzip header).
    progress : callable, optional
        Called as ``progress(done, total)`` with assessment counts after each block (and once
        with ``done=0`` before the first).
    overwrite : bool
        With ``False``, a directory that already holds anything is refused before any work
        (:class:`~recctl.errors.OutputExistsError`), so a data set is never replaced by accident.
    serve : RankerServing, optional
        Serve the lists through recctl's ranker (a model, or the confidence order, with rank's
        options and exploration; one policy, an A/B split of users, or team-draft
        interleaving) instead of the simulator's own confidence order. The world is the same
        as without it: only the served lists, and so the interactions, differ.
    first_assessment : int
        Simulate the assessments numbered ``first_assessment`` onwards of a larger world (one
        round of ``recctl simulate``): their ids, users and random streams are those of that
        world, so rounds of the same world never share an assessment, a session or a stream.
    world_assessments : int, optional
        The assessments of the whole world its users are drawn for (default: ``first_assessment
        + assessments``, this call's). Users own 1..3 of them, so in a world of several calls
        a user comes back across them.

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
    ModelError
        If a model of ``serve`` is missing or unreadable.

    Examples
    --------
    >>> import tempfile
    >>> summary = generate_sample(Path(tempfile.mkdtemp()), assessments=5, seed=1)
    >>> summary.assessments, summary.recommendations >= 5 * 6, summary.impressions >= 5
    (5, True, True)
    """
    _check_arguments(assessments, seed, days, recommendations_per_assessment, sessions_per_assessment)
    world_assessments = first_assessment + assessments if world_assessments is None else world_assessments
    if first_assessment < 0 or world_assessments < first_assessment + assessments:
        raise ValueError(
            f"the assessments {first_assessment}..{first_assessment + assessments - 1} must lie "
            f"in the world's 0..{world_assessments - 1}"
        )
    serving: _Serving | _RankerPolicies = _check_serving(explore, temperature)
    if serve is not None:
        if explore is not None:
            raise ValueError(
                "explore is the simulator's own Plackett-Luce: with serve, explore through serve.options"
            )
        serving = _RankerPolicies.load(serve, seed)
    curve = ExaminationCurve.parse(examination)
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    window = _Window.from_start(start, days, max_recommendations=recommendations_per_assessment[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    names = ("assessments", "recommendations", "interactions", "impressions")
    paths = {name: out_dir / f"{name}{suffix}" for name in names}
    plain_paths = {}
    if truth is not None:
        truth = Path(truth)
        truth.parent.mkdir(parents=True, exist_ok=True)
        plain_paths = {
            "truth": truth,
            "examination": truth_examination_path(truth),
            "rewards": truth_rewards_path(truth),
        }

    population = _Population.draw(np.random.default_rng([seed, 0]), world_assessments)
    slots = recommendations_per_assessment[1]
    tallies = {
        name: (
            _RewardTally(policy, population.users_used, slots),
            _RewardTally(policy, population.users_used, slots),
        )
        for name, policy in serving.reward_policies()
    }
    counts = dict.fromkeys(names, 0)
    if progress is not None:
        progress(0, assessments)
    with _atomic_outputs(paths, compress) as writers, _atomic_outputs(plain_paths, False) as truth_writers:
        last = first_assessment + assessments
        for block_no, first in enumerate(range(first_assessment, last, BLOCK_ASSESSMENTS)):
            assessment_numbers = np.arange(first, min(first + BLOCK_ASSESSMENTS, last))
            stream = [seed, 1, block_no] if first_assessment == 0 else [seed, 1, first_assessment, block_no]
            block, rewards = _simulate_block(
                np.random.default_rng(stream),
                assessment_numbers,
                population,
                window,
                recommendations_per_assessment,
                sessions_per_assessment,
                serving,
                curve,
                with_rewards=truth is not None,
            )
            for name in names:
                writers[name].write(block[name])
                counts[name] += block[name].count(b"\n")
            if "truth" in truth_writers:
                truth_writers["truth"].write(block["truth"])
            for name, (list_rewards, users, assigned) in rewards.items():
                everyone, own = tallies[name]
                everyone.add(list_rewards, users)
                own.add(list_rewards, users, assigned)
            if progress is not None:
                progress(int(assessment_numbers[-1]) + 1 - first_assessment, assessments)
        if "examination" in truth_writers:
            examination_json = curve.as_json(recommendations_per_assessment[1])
            truth_writers["examination"].write((json.dumps(examination_json, indent=2) + "\n").encode())
        if "rewards" in truth_writers:
            truth_writers["rewards"].write(
                _rewards_json(tallies, split=isinstance(serving, _RankerPolicies) and serving.splits_users)
            )
    return SampleSummary(
        assessments=counts["assessments"],
        recommendations=counts["recommendations"],
        interactions=counts["interactions"],
        impressions=counts["impressions"],
        users=len(
            np.unique(population.user_of_assessment[first_assessment : first_assessment + assessments])
        ),
        assessments_path=paths["assessments"],
        recommendations_path=paths["recommendations"],
        interactions_path=paths["interactions"],
        impressions_path=paths["impressions"],
        policy=serving.policy,
        truth_path=truth,
        rewards_path=plain_paths.get("rewards"),
    )


class _RankerPolicies:
    """A :class:`RankerServing` with its models loaded: serves a block's sessions."""

    def __init__(
        self,
        names: list[str],
        rankers: list[Ranker],
        shares: np.ndarray,
        interleave: bool,
        options: RankOptions,
        seed: int,
    ) -> None:
        self.names = names
        self.rankers = rankers
        self.shares = shares  # cumulative user shares per policy, ending at 1.0
        self.interleave = interleave
        self.options = options
        self.seed = seed

    @classmethod
    def load(cls, serve: RankerServing, seed: int) -> _RankerPolicies:
        """Check ``serve`` and load its models (before any work): ValueError, ModelError."""
        from recctl.ranking import Ranker, RankOptions

        names = [str(name) for name, _ in serve.policies]
        if not names:
            raise ValueError("serve: name at least one policy")
        if any(not name.strip() for name in names) or len(set(names)) != len(names):
            raise ValueError(f"serve: policy names must be distinct and non-empty, got {names}")
        weights = np.ones(len(names)) if serve.split is None else np.asarray(serve.split, dtype=np.float64)
        if len(weights) != len(names) or not (np.isfinite(weights).all() and (weights > 0).all()):
            raise ValueError(
                f"serve: split must give one positive share per policy ({len(names)}), got {list(weights)}"
            )
        options = serve.options or RankOptions()
        if serve.interleave:
            if len(names) != 2:
                raise ValueError(f"serve: interleaving needs exactly two policies, got {len(names)}")
            if options.explore is not None:
                raise ValueError("serve: interleaving interleaves two deterministic lists: no exploration")
            if serve.split is not None:
                raise ValueError("serve: a split is for an A/B test, not for interleaving")
        rankers = [
            Ranker.without_model() if str(source) == CONFIDENCE else Ranker(source, require_model=True)
            for _, source in serve.policies
        ]
        shares = np.cumsum(weights) / weights.sum()
        shares[-1] = 1.0
        return cls(names, rankers, shares, serve.interleave, options, seed)

    @property
    def policy(self) -> str:
        if self.interleave:
            return "team-draft"
        return self.options.explore.policy if self.options.explore is not None else "deterministic"

    @property
    def splits_users(self) -> bool:
        return len(self.names) > 1 and not self.interleave

    def reward_policies(self) -> list[tuple[str, str]]:
        """Each policy's name ("all" for a single one) and kind, for the expected rewards."""
        kind = self.options.explore.policy if self.options.explore is not None else "deterministic"
        if len(self.names) == 1:
            return [("all", kind)]
        return [(name, kind) for name in self.names]

    def model_version(self, number: int) -> str:
        return self.rankers[number].model_version or MODEL_VERSION

    def serve(
        self,
        sessions: _Sessions,
        recommendations: dict[str, np.ndarray],
        ids: _SessionIds,
        users: np.ndarray,
        assessment_lines: bytes,
        recommendation_lines: bytes,
    ) -> tuple[_Served, _SessionLabels, dict[str, tuple[_Placements, ...]], np.ndarray]:
        """Rank every session's candidates with each policy, as ``rank`` would, and serve each
        session the list of its user's policy (or the two policies' team-draft interleaving).

        Returns the served rows, the sessions' labels, per reward policy its placements over
        *every* session (what that policy would have served each list), and each session's
        policy number (-1 for interleaved lists).
        """
        from recctl.exploration import list_seed, team_draft
        from recctl.features import candidates, compute_features

        catalog = compute_features(
            candidates(
                _records("recommendations", recommendation_lines), _records("assessments", assessment_lines)
            )
        )
        list_size = np.bincount(recommendations["owner"])
        first_rec = np.cumsum(list_size) - list_size
        sizes = list_size[sessions.owner]
        session_rows = np.repeat(first_rec[sessions.owner], sizes) + (
            np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        )
        featured = catalog[session_rows]  # each session's candidates, as one rank batch each
        seeds = [list_seed(self.seed, request_id) for request_id in ids.request_id.to_list()]
        # Sessions of one assessment have the same candidates, so the same placement probabilities:
        # those are computed once per assessment (seeded by its first session's list).
        first_session = np.flatnonzero(sessions.number == 0)
        assert np.array_equal(sessions.owner[first_session], np.arange(len(list_size)))
        served_lists: list[PolicyLists] = []
        placements_of: dict[str, tuple[_Placements, ...]] = {}
        list_policy_names: list[str] = []
        explore = self.options.explore
        logs_marginals = explore is not None and explore.marginals
        # Marginals are found once per assessment (below), not per session as serving would.
        options = self.options
        if explore is not None:
            options = replace(options, explore=replace(explore, marginals=False))
        first_seeds = [seeds[i] for i in first_session]
        for ranker, (name, _) in zip(self.rankers, self.reward_policies(), strict=True):
            policy = ranker.policy(featured, sizes.tolist(), options)
            lists = policy.serve(seeds)
            list_policy_names.append(policy.name)
            if lists.prefix_propensity is None:  # deterministic: the served order is the policy
                placements_of[name] = _placements_of_orders(lists.orders, sizes, first_rec[sessions.owner])
            else:
                marginals = _assessment_marginals(
                    ranker, catalog, list_size, options, first_seeds, exact_only=not logs_marginals
                )
                placements_of[name] = _placements_of_marginals(
                    marginals, sessions.owner, first_rec, exact_up_to=EXACT_UP_TO
                )
                if logs_marginals:
                    lists = replace(
                        lists,
                        propensity=[
                            marginals[owner][order, np.arange(len(order))]
                            for owner, order in zip(sessions.owner.tolist(), lists.orders, strict=True)
                        ],
                        propensity_method=[
                            propensities.marginal_method(int(size), EXACT_UP_TO) for size in sizes.tolist()
                        ],
                    )
            served_lists.append(lists)
        if self.interleave:
            variant = np.full(len(sessions.owner), -1, dtype=np.int64)
            chosen = team_draft(served_lists[0], served_lists[1], seeds)
            labels = _SessionLabels.constant(
                len(sessions.owner), self.model_version(0), INTERLEAVED_VARIANT, "team-draft"
            )
        else:
            variant = (
                _user_variants(self.seed, users, self.shares)
                if self.splits_users
                else np.zeros(len(sessions.owner), dtype=np.int64)
            )
            chosen = served_lists[0] if len(served_lists) == 1 else _pick_lists(served_lists, variant)
            versions = [self.model_version(number) for number in range(len(self.names))]
            labels = _SessionLabels(
                pl.Series(versions, dtype=pl.String).gather(variant),
                pl.Series(self.names, dtype=pl.String).gather(variant),
                pl.Series(list_policy_names, dtype=pl.String).gather(variant),
            )
        return _served_of(chosen, first_rec[sessions.owner]), labels, placements_of, variant


TRUTH_DRAWS = 64
"""Lists drawn per assessment for the expected rewards of an exploring ranker's lists longer than
the exact cap, when the log does not carry marginals. Monte Carlo is unbiased and the truth
averages it over every list, so its error is far below one list's: see :func:`_assessment_marginals`."""
#: Largest number of item rows ranked at once when drawing those lists (replicas of the lists).
_DRAW_ROWS_PER_CHUNK = 1 << 18


def _assessment_marginals(
    ranker: Ranker,
    catalog: pl.DataFrame,
    list_size: np.ndarray,
    options: RankOptions,
    seeds: list[int],
    *,
    exact_only: bool,
) -> list[np.ndarray]:
    """Per assessment, the ``(candidates, slots)`` placement probabilities of the exploring ranker.

    Lists of up to ``EXACT_UP_TO`` items: exact (the ranker's dynamic programme). Longer ones: the
    ranker's own Monte Carlo marginals (what ``rank --propensities marginal`` logs), or with
    ``exact_only`` the average placement of :data:`TRUTH_DRAWS` lists drawn by the ranker from
    independent streams (replicas of the lists ranked together). A list's expected clicks vary
    little from one drawn order to the next (a standard deviation of about 0.2 clicks), so over
    ``m`` such lists the truth's Monte Carlo error is about ``0.2 / sqrt(64 m)`` clicks per list:
    below 0.1% of the clicks per list from a few dozen long lists on.
    """
    out: list[np.ndarray] = [np.zeros((0, 0))] * len(list_size)
    long = list_size > EXACT_UP_TO if exact_only else np.zeros(len(list_size), dtype=bool)
    if (~long).any():
        members = np.flatnonzero(~long)
        frame = catalog.filter(pl.Series(np.repeat(~long, list_size)))
        policy = ranker.policy(frame, list_size[~long].tolist(), options)
        for a, marginal in zip(
            members.tolist(), policy.marginals([seeds[a] for a in members.tolist()]), strict=True
        ):
            out[a] = marginal
    if not long.any():
        return out
    members = np.flatnonzero(long)
    rows = np.flatnonzero(np.repeat(long, list_size))
    sizes = list_size[long]
    base = np.array([seeds[a] for a in members.tolist()], dtype=np.uint64)
    replicas = max(1, min(TRUTH_DRAWS, _DRAW_ROWS_PER_CHUNK // max(len(rows), 1)))
    counts: list[np.ndarray | None] = [None] * len(members)
    for first in range(0, TRUTH_DRAWS, replicas):
        draws = range(first, min(first + replicas, TRUTH_DRAWS))
        frame = catalog[np.tile(rows, len(draws))]
        policy = ranker.policy(frame, np.tile(sizes, len(draws)).tolist(), options)
        lists = policy.serve(np.concatenate([_mixed_seeds(base, draw) for draw in draws]).tolist())
        for number, order in enumerate(lists.orders):
            row = number % len(members)
            if counts[row] is None:
                counts[row] = np.zeros((int(sizes[row]), len(order)))
            counts[row][order, np.arange(len(order))] += 1.0  # type: ignore[index]
    for a, count in zip(members.tolist(), counts, strict=True):
        assert count is not None
        out[a] = count / TRUTH_DRAWS
    return out


def _mixed_seeds(seeds: np.ndarray, draw: int) -> np.ndarray:
    """Independent list seeds for Monte Carlo draw ``draw`` of each list (splitmix64 of both)."""
    with np.errstate(over="ignore"):
        z = seeds ^ (np.uint64(draw + 1) * np.uint64(0xD1B54A32D192ED03))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _records(kind: Literal["recommendations", "assessments"], lines: bytes) -> pl.DataFrame:
    """The simulated NDJSON lines of a catalog as recctl's records (the rules of ``ingest`` and
    ``rank``), so the ranker sees exactly what it would see in production."""
    from recctl.labels import DEFAULT_POLICY
    from recctl.records.validation import validate

    raw = pl.Series("raw", lines.decode().splitlines(), dtype=pl.String)
    chunk = pl.DataFrame({"raw": raw}).select(
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("input_position"),
        "raw",
        pl.col("raw").alias("json"),
        pl.lit(None, dtype=pl.String).alias("error"),
    )
    checked = validate(kind, chunk, DEFAULT_POLICY, keep_extra=False, guard=False)
    if checked.rejects.height:  # the simulator writes valid records only: a bug, not bad input
        raise RuntimeError(f"simulated {kind} break the record rules: {checked.rejects['reason'][0]}")
    return checked.records


def _user_variants(seed: int, users: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The policy number of each user index: a seeded 64-bit hash of (seed, user) (splitmix64)
    read as a uniform number in [0, 1), against the cumulative ``shares``. A user keeps their
    variant in every list, however many assessments there are."""
    with np.errstate(over="ignore"):
        z = np.asarray(users, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z += np.uint64(seed % 2**64) * np.uint64(0xD1B54A32D192ED03) + np.uint64(0x632BE59BD9B4E019)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    uniform = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.minimum(np.searchsorted(shares, uniform, side="right"), len(shares) - 1)


def _pick_lists(lists: Sequence[PolicyLists], choice: np.ndarray) -> PolicyLists:
    """Per list ``l``, list ``l`` of ``lists[choice[l]]`` (its order, propensities, diversity)."""
    from recctl.exploration import PolicyLists

    def pick(field: str) -> Any:
        values = [getattr(one, field) for one in lists]
        if any(value is None for value in values):
            return None
        return [values[number][row] for row, number in enumerate(choice.tolist())]

    return PolicyLists(
        orders=pick("orders"),
        prefix_propensity=pick("prefix_propensity"),
        propensity=pick("propensity"),
        propensity_method=pick("propensity_method"),
        teams=None,
        diversity=pick("diversity"),
        diversity_discounted=pick("diversity_discounted"),
    )


def _served_of(lists: PolicyLists, first_rec_of_session: np.ndarray) -> _Served:
    """Flat served rows (session by session, in slot order) of one list per session."""
    lengths = np.array([len(order) for order in lists.orders], dtype=np.int64)
    session = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    item = np.concatenate([*lists.orders, np.empty(0, dtype=np.int64)]).astype(np.int64)
    rec = first_rec_of_session[session] + item
    ones = np.ones(len(rec))

    def flat(values: list[np.ndarray] | None, missing: float) -> np.ndarray:
        if values is None:
            return np.full(len(rec), missing)
        return _significant(np.concatenate([*values, np.empty(0)]).astype(np.float64))

    deterministic = lists.prefix_propensity is None
    team = (
        None if lists.teams is None else np.array([t for teams in lists.teams for t in teams], dtype=object)
    )
    return _Served(
        session,
        rec,
        position,
        ones if deterministic else flat(lists.propensity, np.nan),
        ones.copy() if deterministic else flat(lists.prefix_propensity, np.nan),
        team=team,
    )


def _placements_of_orders(
    orders: Sequence[np.ndarray], sizes: np.ndarray, first_rec_of_session: np.ndarray
) -> tuple[_Placements, ...]:
    """The placements of deterministic lists: probability 1 for each served item at its slot."""
    lengths = np.array([len(order) for order in orders], dtype=np.int64)
    groups = []
    for size, length in sorted(set(zip(sizes.tolist(), lengths.tolist(), strict=True))):
        of_shape = np.flatnonzero((sizes == size) & (lengths == length))
        probability = np.zeros((len(of_shape), size, length))
        picked = np.stack([orders[row] for row in of_shape.tolist()]).reshape(len(of_shape), length)
        probability[np.arange(len(of_shape))[:, None], picked, np.arange(length)] = 1.0
        candidates = first_rec_of_session[of_shape][:, None] + np.arange(size)
        groups.append(_Placements(of_shape, candidates, probability))
    return tuple(groups)


def _placements_of_marginals(
    marginals: Sequence[np.ndarray], owner: np.ndarray, first_rec: np.ndarray, *, exact_up_to: int
) -> tuple[_Placements, ...]:
    """The placements of each session from its assessment's ``(candidates, slots)`` marginals."""
    shapes = [marginal.shape for marginal in marginals]
    groups = []
    for shape in sorted(set(shapes)):
        assessments_of_shape = np.array(
            [a for a, other in enumerate(shapes) if other == shape], dtype=np.int64
        )
        stacked = np.stack([marginals[a] for a in assessments_of_shape.tolist()])
        of_shape = np.flatnonzero(np.isin(owner, assessments_of_shape))
        row = np.searchsorted(assessments_of_shape, owner[of_shape])
        candidates = first_rec[owner[of_shape]][:, None] + np.arange(shape[0])
        method = propensities.marginal_method(shape[0], exact_up_to)
        groups.append(_Placements(of_shape, candidates, stacked[row], method))
    return tuple(groups)


def _rewards_json(tallies: dict[str, tuple[_RewardTally, _RewardTally]], *, split: bool) -> bytes:
    """The ``.rewards.json`` text: ``{"depth", "policies": {name: {...}}}`` (see :func:`generate_sample`)."""
    depth = max((everyone.longest for everyone, _ in tallies.values()), default=0)
    policies = {}
    for name, (everyone, own) in tallies.items():
        entry = everyone.as_json(depth)
        if split:
            assigned = own.as_json(depth)
            entry["assigned"] = {
                key: assigned[key]
                for key in (
                    "lists",
                    "users",
                    "items",
                    "clicks_per_list",
                    "implementations_per_list",
                    "ctr",
                    "implementation_rate",
                )
            }
        policies[name] = entry
    return (json.dumps({"depth": depth, "policies": policies}, indent=2) + "\n").encode()


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


def _check_serving(explore: str | None, temperature: float) -> _Serving:
    if explore is not None and explore not in EXPLORE_POLICIES:
        raise ValueError(f"explore must be one of {', '.join(EXPLORE_POLICIES)} or None, got {explore!r}")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return _Serving(explore, float(temperature))


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
    serving: _Serving | _RankerPolicies,
    curve: ExaminationCurve,
    *,
    with_rewards: bool = False,
) -> tuple[dict[str, bytes], dict[str, tuple[_ListRewards, np.ndarray, np.ndarray]]]:
    """Simulate one block of assessments; return the NDJSON bytes of each file (and the truth),
    and (``with_rewards``) per reward policy its lists' expected rewards, the users of the lists
    and the mask of the lists it served.

    The world (assessments, recommendations, utilities, sessions) is drawn from ``rng`` before
    anything is served; the simulator's own policies draw from ``rng`` after it, the ranker
    draws from each list's own seed, and the users' reactions come last from ``rng``.
    """
    assessments = _draw_assessments(rng, assessment_numbers, population, window)
    recommendations = _draw_recommendations(rng, assessments, recommendations_per_assessment)
    utility = _true_utility(rng, assessments, recommendations, population)
    recommendations["confidence_score"] = _old_confidence(rng, utility, recommendations)
    recommendations["position"] = _positions_by_confidence(recommendations)
    sessions = _draw_sessions(rng, assessments, window, sessions_per_assessment)
    ids = _SessionIds.of(sessions, assessments, population.id_width)
    assessment_lines = _ndjson(_assessment_frame(assessments, population.id_width))
    recommendation_lines = _ndjson(_recommendation_frame(recommendations, assessments))
    users = assessments["user"][sessions.owner]
    if isinstance(serving, _RankerPolicies):
        served, labels, placements_of, variant = serving.serve(
            sessions, recommendations, ids, users, assessment_lines, recommendation_lines
        )
    else:
        served = _serve_lists(rng, sessions, recommendations, serving)
        labels = _SessionLabels.constant(len(sessions.owner), MODEL_VERSION, VARIANT, serving.policy)
        placements_of = {"all": served.placements}
        variant = np.zeros(len(sessions.owner), dtype=np.int64)
    interactions = _simulate_interactions(rng, sessions, served, utility, curve)
    rewards = {}
    if with_rewards:
        slots = recommendations_per_assessment[1]
        for number, (name, placements) in enumerate(placements_of.items()):
            list_rewards = _expected_rewards(placements, len(sessions.owner), slots, utility, curve)
            rewards[name] = (list_rewards, users, variant == number)
    block = {
        "assessments": assessment_lines,
        "recommendations": recommendation_lines,
        "interactions": _interaction_lines(rng, interactions, ids, labels, assessments, recommendations),
        "impressions": _ndjson(
            _impression_frame(sessions, served, ids, labels, assessments, recommendations)
        ),
        "truth": _ndjson(_truth_frame(utility, assessments, recommendations)),
    }
    return block, rewards


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


# --- sessions and the lists served to them ------------------------------------------------------


@dataclass(frozen=True)
class _Sessions:
    """The block's sessions: one served list each."""

    owner: np.ndarray  # block-local assessment index
    number: np.ndarray  # 0-based session number within the assessment
    start_ms: np.ndarray  # when the list was served
    page_slots: np.ndarray  # slots on the first screen


def _draw_sessions(
    rng: np.random.Generator,
    assessments: dict[str, np.ndarray],
    window: _Window,
    sessions_per_assessment: tuple[int, int],
) -> _Sessions:
    n_assessments = len(assessments["number"])
    low, high = sessions_per_assessment
    shares = np.asarray(SESSION_COUNT_SHARES[low - 1 : high])
    session_count = rng.choice(np.arange(low, high + 1), size=n_assessments, p=shares / shares.sum())
    owner = np.repeat(np.arange(n_assessments), session_count)
    number = np.arange(len(owner)) - (np.cumsum(session_count) - session_count)[owner]
    # Sessions start once the recommendations exist (they are created within 5 minutes of the
    # assessment): the first within two days, later ones anywhere until the window closes.
    earliest_ms = assessments["created_ms"][owner] + 10 * 60 * _MS_PER_SECOND
    first_session_ms = earliest_ms + rng.integers(0, 48 * _MS_PER_HOUR, size=len(earliest_ms))
    later_session_ms = rng.integers(
        earliest_ms, np.maximum(window.last_session_ms, earliest_ms), endpoint=True
    )
    start_ms = np.minimum(np.where(number == 0, first_session_ms, later_session_ms), window.last_session_ms)
    # The screen's size depends on the device, never on what is in the list.
    page_slots = rng.integers(PAGE_SLOTS[0], PAGE_SLOTS[1], size=len(owner), endpoint=True)
    return _Sessions(owner, number, start_ms, page_slots)


@dataclass(frozen=True)
class _Placements:
    """Where a policy puts each item, in probability, for lists that share a shape.

    ``session[l]`` is list ``l``'s session, ``rec[l, i]`` its ``i``-th candidate and
    ``probability[l, i, j]`` the policy's P(that candidate at slot ``j``) (0 or 1 for a
    deterministic list; ``j`` runs over the served slots). ``method`` says how the probabilities
    were found: ``exact`` or ``monte-carlo``.
    """

    session: np.ndarray  # (lists,)
    rec: np.ndarray  # (lists, candidates) block-local recommendation index
    probability: np.ndarray  # (lists, candidates, slots)
    method: str = "exact"


@dataclass(frozen=True)
class _Served:
    """One row per served (session, recommendation): the served lists, item by item.

    Rows run session by session. ``placements`` is the policy's distribution over lists that the
    rows were drawn from, for the truth's expected rewards.
    """

    session: np.ndarray
    rec: np.ndarray  # block-local recommendation index
    position: np.ndarray
    propensity: np.ndarray  # the policy's P(this item at this position); NaN: not logged
    prefix_propensity: np.ndarray  # the policy's P(this list down to this position)
    placements: tuple[_Placements, ...] = ()
    team: np.ndarray | None = None  # team-draft interleaving: "A" or "B" per row


def _serve_lists(
    rng: np.random.Generator,
    sessions: _Sessions,
    recommendations: dict[str, np.ndarray],
    serving: _Serving,
) -> _Served:
    """Order every session's list: by confidence, or drawn by Plackett-Luce around that order.

    Plackett-Luce lists are drawn and their propensities computed per list size, many lists at
    once. The marginal propensities depend only on the assessment's scores, so they are computed
    once per assessment and shared by its sessions.
    """
    list_size = np.bincount(recommendations["owner"])  # every assessment has a recommendation
    first_rec = np.cumsum(list_size) - list_size
    items_per_session = list_size[sessions.owner]
    first_row = np.cumsum(items_per_session) - items_per_session
    session = np.repeat(np.arange(len(sessions.owner)), items_per_session)
    item = np.arange(len(session)) - first_row[session]  # catalog slot within the list
    rec = first_rec[sessions.owner][session] + item
    if serving.explore is None:
        ones = np.ones(len(rec))
        position = recommendations["position"][rec]
        return _Served(
            session, rec, position, ones, ones.copy(), _fixed_placements(session, rec, position, first_row)
        )

    position = np.empty(len(rec), dtype=np.int64)
    propensity = np.empty(len(rec))
    prefix_propensity = np.empty(len(rec))
    placements = []
    confidence = recommendations["confidence_score"]
    for size in np.unique(items_per_session):
        owners = np.flatnonzero(list_size == size)  # assessments with lists of this size
        logits = propensities.temperature_logits(
            confidence[first_rec[owners][:, None] + np.arange(size)], serving.temperature
        )
        marginals = propensities.marginal_propensities(logits, exact_up_to=EXACT_PROPENSITIES_UP_TO, rng=rng)
        of_size = np.flatnonzero(items_per_session == size)
        owner_row = np.searchsorted(owners, sessions.owner[of_size])
        lists = propensities.plackett_luce_lists(rng, logits[owner_row])  # item at each slot
        prefix = propensities.prefix_propensities(logits[owner_row], lists)
        item_position = np.argsort(lists, axis=1)  # slot of each item
        rows = first_row[of_size][:, None] + np.arange(size)
        position[rows] = item_position
        prefix_propensity[rows] = np.take_along_axis(prefix, item_position, axis=1)
        # Above the exact cap the marginals are estimates; a placement no draw made gets the
        # smallest estimate there is, since a logged placement is never impossible.
        floor = 0.0 if size <= EXACT_PROPENSITIES_UP_TO else 1.0 / propensities.MONTE_CARLO_DRAWS
        propensity[rows] = np.maximum(marginals[owner_row[:, None], np.arange(size), item_position], floor)
        placements.append(
            _Placements(
                of_size,
                rec[rows],
                marginals[owner_row],
                propensities.marginal_method(int(size), EXACT_PROPENSITIES_UP_TO),
            )
        )
    # Six significant digits: exact for any use of a propensity, and short lines.
    return _Served(
        session,
        rec,
        position,
        _significant(propensity),
        _significant(prefix_propensity),
        tuple(placements),
    )


def _fixed_placements(
    session: np.ndarray, rec: np.ndarray, position: np.ndarray, first_row: np.ndarray
) -> tuple[_Placements, ...]:
    """The placements of deterministic lists (rows session by session): probability 1 at each
    item's own slot, one group per list length."""
    lengths = np.bincount(session, minlength=len(first_row))
    groups = []
    for size in np.unique(lengths[lengths > 0]):
        of_size = np.flatnonzero(lengths == size)
        rows = first_row[of_size][:, None] + np.arange(size)
        probability = np.zeros((len(of_size), size, size))
        np.put_along_axis(probability, position[rows][:, :, None], 1.0, axis=2)
        groups.append(_Placements(of_size, rec[rows], probability))
    return tuple(groups)


def _significant(values: np.ndarray, digits: int = 6) -> np.ndarray:
    return pl.Series(values).round_sig_figs(digits).to_numpy()


@dataclass(frozen=True)
class _SessionIds:
    """Per session: its assessment, user, session and request ids (shared by impressions and interactions)."""

    assessment_id: pl.Series
    user_id: pl.Series
    session_id: pl.Series
    request_id: pl.Series

    @classmethod
    def of(cls, sessions: _Sessions, assessments: dict[str, np.ndarray], user_id_width: int) -> _SessionIds:
        assessment_id = _prefixed_ids("asm-", assessments["number"][sessions.owner], 6)
        digits = assessment_id.str.strip_prefix("asm-")
        session_text = "-" + pl.Series(sessions.number + 1).cast(pl.String)
        return cls(
            assessment_id,
            _prefixed_ids("user-", assessments["user"][sessions.owner], user_id_width),
            "ses-" + digits + session_text,
            "req-" + digits + session_text,
        )


# --- interactions ------------------------------------------------------------------------------


def _simulate_interactions(
    rng: np.random.Generator,
    sessions: _Sessions,
    served: _Served,
    utility: np.ndarray,
    curve: ExaminationCurve,
) -> pl.DataFrame:
    """Simulate what each session's user does with its list; one row per interaction event.

    The frontend logs a view for every item on the first screen (the session's first 6-10 slots),
    as the page loads, with the page's dwell time (seconds ~ lognormal, median 25, the same for
    every item on it): views say what was on screen, not what was looked at. The user examines
    slot ``p`` with probability ``curve.at(p)`` (scrolling past the first screen too), walking the
    list top-down. Examined -> click with probability sigmoid(-1.2 + 2 u); after a click save
    sigmoid(-1.8 + 1.6 u), implement sigmoid(-2.3 + 2.2 u), share sigmoid(-2.8 + 1.2 u), rate 0.25
    (stars: 3 + 1.3 u + noise, rounded into 1..5); examined but not clicked -> dismiss with
    probability 0.4 * sigmoid(-1.5 - 2 u). Sessions are independent, so an item dismissed once may
    be implemented later (rarely). An item is implemented at most once.
    """
    session, position = served.session, served.position
    u = utility[served.rec]
    n_pairs = len(session)
    start_ms = sessions.start_ms[session]

    on_screen = position < sessions.page_slots[session]
    examined = rng.random(n_pairs) < curve.at(position)
    clicked = examined & (rng.random(n_pairs) < click_probability(u))
    saved = clicked & (rng.random(n_pairs) < _sigmoid(-1.8 + 1.6 * u))
    implemented = clicked & (rng.random(n_pairs) < implement_probability(u))
    shared = clicked & (rng.random(n_pairs) < _sigmoid(-2.8 + 1.2 * u))
    rated = clicked & (rng.random(n_pairs) < 0.25)
    dismissed = examined & ~clicked & (rng.random(n_pairs) < 0.4 * _sigmoid(-1.5 - 2.0 * u))

    view_ms = start_ms + rng.integers(0, _MS_PER_SECOND, size=n_pairs)
    examined_ms = start_ms + position * rng.integers(3, 12, size=n_pairs) * _MS_PER_SECOND
    examined_ms += rng.integers(0, _MS_PER_SECOND, size=n_pairs)
    click_ms = examined_ms + rng.integers(1 * _MS_PER_SECOND, 10 * _MS_PER_SECOND, size=n_pairs)
    page_seconds = np.round(np.minimum(rng.lognormal(np.log(25.0), 0.6, size=len(sessions.owner)), 600.0), 1)
    stars = np.clip(np.rint(3.0 + 1.3 * u + rng.normal(0.0, 0.6, size=n_pairs)), 1, 5).astype(np.int64)

    def seconds_after(base_ms: np.ndarray, low_s: int, high_s: int) -> np.ndarray:
        return base_ms + rng.integers(low_s * _MS_PER_SECOND, high_s * _MS_PER_SECOND, size=n_pairs)

    # Event kinds in INTERACTION_TYPES order, each with its pairs and time.
    happened_by_kind = (on_screen, clicked, implemented, saved, shared, rated, dismissed)
    time_by_kind = (
        view_ms,
        click_ms,
        seconds_after(click_ms, 60, 1800),
        seconds_after(click_ms, 5, 60),
        seconds_after(click_ms, 10, 120),
        seconds_after(click_ms, 20, 300),
        seconds_after(examined_ms, 1, 6),
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
            "rec": served.rec[event_pair],
            "session": session[event_pair],
            "position": position[event_pair],
            "propensity": served.propensity[event_pair],
            "seconds_viewed": page_seconds[session[event_pair]],
            "stars": stars[event_pair],
        }
    ).sort("timestamp_ms", "pair", "kind")
    # An item is implemented once: a later implement of the same item (another session) is dropped.
    is_implement = pl.col("kind") == INTERACTION_TYPES.index("implement")
    repeated_implement = is_implement & (pl.int_range(pl.len()).over("rec", "kind") > 0)
    return interactions.filter(~repeated_implement)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def click_probability(utility: np.ndarray) -> np.ndarray:
    """P(click | examined) of items of hidden ``utility``: sigmoid(-1.2 + 2 u)."""
    return _sigmoid(-1.2 + 2.0 * np.asarray(utility))


def implement_probability(utility: np.ndarray) -> np.ndarray:
    """P(implement | clicked) of items of hidden ``utility``: sigmoid(-2.3 + 2.2 u)."""
    return _sigmoid(-2.3 + 2.2 * np.asarray(utility))


def _interaction_lines(
    rng: np.random.Generator,
    interactions: pl.DataFrame,
    ids: _SessionIds,
    labels: _SessionLabels,
    assessments: dict[str, np.ndarray],
    recommendations: dict[str, np.ndarray],
) -> bytes:
    """Render interactions as NDJSON; optional keys are left out (not written as null) when absent.

    About 70% of rows carry an ``event_id``; about 80% name their list in ``context.request_id``
    (the others are linked to it by time); ``assessment_id`` is at the top level in about half of
    the rows and inside ``context`` in the others; about 2% spell the interaction type untidily
    (``" View"``, ``"CLICK "``), which the record rules accept.
    """
    n = interactions.height
    if n == 0:
        return b""
    session = interactions["session"].to_numpy()
    kind = interactions["kind"].to_numpy()
    rec = interactions["rec"].to_numpy()
    has_event_id = rng.random(n) < 0.7
    has_request_id = rng.random(n) < REQUEST_ID_SHARE
    top_level_assessment = rng.random(n) < 0.5
    untidy_type = rng.random(n) < 0.02
    untidy_style = rng.integers(0, 3, size=n)
    # 16 hex digits per event: the random words' bytes as one hex string, cut in fixed widths.
    event_hex = np.frombuffer(
        rng.integers(0, 2**63, size=n).astype(">u8").tobytes().hex().encode(), dtype="S16"
    )
    is_view = kind == INTERACTION_TYPES.index("view")
    is_rate = kind == INTERACTION_TYPES.index("rate")
    fields = pl.DataFrame(
        [
            pl.Series("event_hex", event_hex).cast(pl.String),
            pl.Series("has_event_id", has_event_id),
            _recommendation_ids(
                assessments["number"][recommendations["owner"][rec]], recommendations["slot"][rec]
            ).alias("recommendation_id"),
            ids.user_id.gather(session).alias("user_id"),
            ids.assessment_id.gather(session).alias("assessment_id"),
            pl.Series("top_level_assessment", top_level_assessment),
            _lookup(INTERACTION_TYPES, kind).alias("interaction_type"),
            pl.Series("untidy_type", untidy_type),
            pl.Series("untidy_style", untidy_style),
            pl.Series("seconds_viewed", np.where(is_view, interactions["seconds_viewed"].to_numpy(), np.nan)),
            pl.Series("stars", interactions["stars"].to_numpy()),
            pl.Series("is_rate", is_rate),
            _iso_utc(interactions["timestamp_ms"].to_numpy(), milliseconds=True).alias("timestamp"),
            ids.session_id.gather(session).alias("session_id"),
            ids.request_id.gather(session).alias("request_id"),
            pl.Series("has_request_id", has_request_id),
            interactions["position"],
            interactions["propensity"].fill_nan(None),
            labels.model_version.gather(session).alias("model_version"),
            labels.variant.gather(session).alias("variant"),
        ]
    ).with_columns(
        pl.when("has_event_id").then("evt-" + pl.col("event_hex")).alias("event_id"),
        pl.when("untidy_type")
        .then(_untidy_spelling(pl.col("interaction_type"), pl.col("untidy_style")))
        .otherwise("interaction_type")
        .alias("interaction_type"),
        pl.col("seconds_viewed").fill_nan(None),
        pl.when("is_rate").then("stars").alias("stars"),
        pl.when("has_request_id").then("request_id").alias("request_id"),
        pl.when("top_level_assessment").then("assessment_id").alias("top_assessment_id"),
        pl.when(~pl.col("top_level_assessment")).then("assessment_id").alias("context_assessment_id"),
    )
    context = pl.concat_str(
        [
            _json_member("session_id"),
            _json_member("request_id"),
            _json_member("context_assessment_id", "assessment_id"),
            _json_member("position"),
            _json_member("propensity"),
            _json_member("model_version"),
            _json_member("variant"),
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


# --- impressions and the truth -------------------------------------------------------------------


def _impression_frame(
    sessions: _Sessions,
    served: _Served,
    ids: _SessionIds,
    labels: _SessionLabels,
    assessments: dict[str, np.ndarray],
    recommendations: dict[str, np.ndarray],
) -> pl.DataFrame:
    """One impression record per session: its list's items in position order, with propensities
    (``propensity`` null when the policy did not compute marginals) and, for interleaved lists,
    each item's ``team``."""
    rec = served.rec
    fields = ["recommendation_id", "position", "propensity", "prefix_propensity"]
    columns = [
        pl.Series("session", served.session),
        _recommendation_ids(
            assessments["number"][recommendations["owner"][rec]], recommendations["slot"][rec]
        ).alias("recommendation_id"),
        pl.Series("position", served.position),
        pl.Series("propensity", served.propensity).fill_nan(None),
        pl.Series("prefix_propensity", served.prefix_propensity),
    ]
    if served.team is not None:
        columns.append(pl.Series("team", served.team, dtype=pl.String))
        fields.append("team")
    items = (
        pl.DataFrame(columns)
        .sort("session", "position")
        .group_by("session", maintain_order=True)
        .agg(items=pl.struct(fields))
    )
    return pl.DataFrame(
        [
            ids.request_id.alias("request_id"),
            _iso_utc(sessions.start_ms, milliseconds=True).alias("timestamp"),
            ids.assessment_id.alias("assessment_id"),
            ids.user_id.alias("user_id"),
            ids.session_id.alias("session_id"),
            labels.model_version.alias("model_version"),
            labels.variant.alias("variant"),
            labels.policy.alias("policy"),
            items["items"],
        ]
    )


@dataclass(frozen=True)
class _SessionLabels:
    """Per session: the model version, variant and policy its impression and interactions name."""

    model_version: pl.Series
    variant: pl.Series
    policy: pl.Series

    @classmethod
    def constant(cls, sessions: int, model_version: str, variant: str, policy: str) -> _SessionLabels:
        return cls(
            pl.Series([model_version] * sessions, dtype=pl.String),
            pl.Series([variant] * sessions, dtype=pl.String),
            pl.Series([policy] * sessions, dtype=pl.String),
        )


def _truth_frame(
    utility: np.ndarray, assessments: dict[str, np.ndarray], recommendations: dict[str, np.ndarray]
) -> pl.DataFrame:
    """Per recommendation its hidden utility and the grade it falls in (:data:`GRADE_CUTS`)."""
    owner = recommendations["owner"]
    return pl.DataFrame(
        [
            _recommendation_ids(assessments["number"][owner], recommendations["slot"]).alias(
                "recommendation_id"
            ),
            _prefixed_ids("asm-", assessments["number"][owner], 6).alias("assessment_id"),
            pl.Series("utility", np.round(utility, 4)),
            pl.Series("grade", np.digitize(utility, GRADE_CUTS).astype(np.int64)),
        ]
    )


@dataclass(frozen=True)
class _ListRewards:
    """Per session of a block, the expected clicks and implementations at each slot (padded with
    zeros past the list's end) and the number of items served."""

    clicks: np.ndarray  # (sessions, slots)
    implementations: np.ndarray  # (sessions, slots)
    items: np.ndarray  # (sessions,)
    methods: frozenset[str]
    #: Expected number of items implemented at least once over all the block's sessions: the
    #: implementations the log keeps, since a repeat of an implemented item is dropped.
    distinct_implementations: float = 0.0


def _expected_rewards(
    placements: Sequence[_Placements],
    sessions: int,
    slots: int,
    utility: np.ndarray,
    curve: ExaminationCurve,
) -> _ListRewards:
    """The exact expectation of each list's clicks and implementations under the hidden click model.

    For a list, slot ``j`` earns ``sum_i P(item i at j) * examination(j) * P(click | u_i)`` clicks and
    that times ``P(implement | click, u_i)`` implementations: examination, click and implementation
    are independent given the slot and the item, so the expectation is linear in the placement
    probabilities. It is exact for exact placements (and for deterministic lists); a Monte Carlo
    placement gives an unbiased estimate.

    The simulated users implement an item at most once (a later session's implement of it is
    dropped from the log). That makes one list's implementations depend on the others', so the
    per-list figures leave the rule out: they are what serving a list earns on its own, the value
    an off-policy estimate of one list targets. ``distinct_implementations`` has the rule: with
    ``q[s, i]`` the probability that session ``s`` implements item ``i`` (sessions are independent
    given the world), the log keeps ``sum_i (1 - prod_s (1 - q[s, i]))`` implementations in
    expectation.
    """
    clicks = np.zeros((sessions, slots))
    implementations = np.zeros((sessions, slots))
    items = np.zeros(sessions, dtype=np.int64)
    click_p = click_probability(utility)
    implement_p = click_p * implement_probability(utility)
    never_implemented = np.zeros(len(utility))  # per item: sum over sessions of log(1 - q)
    for group in placements:
        served = group.probability.shape[2]
        examination = curve.at(np.arange(served))
        clicks[group.session, :served] = np.einsum(
            "ln,lns,s->ls", click_p[group.rec], group.probability, examination
        )
        implementations[group.session, :served] = np.einsum(
            "ln,lns,s->ls", implement_p[group.rec], group.probability, examination
        )
        items[group.session] = served
        implemented = np.einsum("ln,lns,s->ln", implement_p[group.rec], group.probability, examination)
        never_implemented += np.bincount(
            group.rec.ravel(), np.log1p(-implemented.ravel()), minlength=len(utility)
        )
    return _ListRewards(
        clicks,
        implementations,
        items,
        frozenset(g.method for g in placements),
        float(np.sum(-np.expm1(never_implemented))),
    )


class _RewardTally:
    """A policy's expected rewards summed over the lists of every block."""

    def __init__(self, policy: str, users: int, slots: int) -> None:
        self.policy = policy
        self.lists = 0
        self.items = 0
        self.longest = 0
        self.users = np.zeros(users, dtype=bool)
        self.clicks = np.zeros(slots)
        self.implementations = np.zeros(slots)
        self.distinct_implementations = 0.0
        self.methods: set[str] = set()

    def add(self, rewards: _ListRewards, users: np.ndarray, chosen: np.ndarray | None = None) -> None:
        """Add the lists ``chosen`` (a boolean mask over sessions; default all), served to ``users``."""
        if chosen is not None:
            rewards = _ListRewards(
                rewards.clicks[chosen],
                rewards.implementations[chosen],
                rewards.items[chosen],
                rewards.methods,
                float("nan"),  # the at-most-once rule couples lists: not defined for a subset
            )
            users = users[chosen]
        self.distinct_implementations += rewards.distinct_implementations
        self.lists += len(rewards.items)
        self.items += int(rewards.items.sum())
        self.longest = max(self.longest, int(rewards.items.max(initial=0)))
        self.users[users] = True
        self.clicks += rewards.clicks.sum(axis=0)
        self.implementations += rewards.implementations.sum(axis=0)
        if len(rewards.items):
            self.methods |= rewards.methods

    def as_json(self, depth: int) -> dict[str, object]:
        lists = max(self.lists, 1)
        clicks = float(self.clicks.sum())
        implementations = float(self.implementations.sum())
        return {
            "policy": self.policy,
            "lists": self.lists,
            "users": int(self.users.sum()),
            "items": self.items,
            "clicks_per_list": clicks / lists,
            "implementations_per_list": implementations / lists,
            "ctr": clicks / self.items if self.items else None,
            "implementation_rate": implementations / self.items if self.items else None,
            "logged_implementations_per_list": self.distinct_implementations / lists,
            "clicks_per_list_by_depth": (np.cumsum(self.clicks[:depth]) / lists).tolist(),
            "implementations_per_list_by_depth": (np.cumsum(self.implementations[:depth]) / lists).tolist(),
            "method": "monte-carlo" if "monte-carlo" in self.methods else "exact",
        }


def truth_rewards_path(truth: Path) -> Path:
    """The expected rewards beside a truth file: ``truth.ndjson`` -> ``truth.rewards.json``."""
    truth = Path(truth)
    stem = truth.name[: -len(".ndjson")] if truth.name.endswith(".ndjson") else truth.name
    return truth.with_name(f"{stem}.rewards.json")


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
