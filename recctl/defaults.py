"""Defaults that the library and the command line share, each defined once.

The library's signatures use them and the commands show them in ``--help``, so this module imports
nothing heavy: ``import recctl.cli`` reads it at start-up.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

DEFAULT_MODEL_PATH = Path("models/recommendation_ranker.txt")
"""Where ``train`` writes the model and ``evaluate`` and ``rank`` read it (its meta is beside it)."""

LOOKBACK_DAYS = 90
"""A window without a start begins this many days before its end."""
MIN_INTERACTIONS = 100
"""A training set needs at least this many interactions in its window."""

NUM_BOOST_ROUND = 500
EARLY_STOPPING_ROUNDS = 50
VALIDATION_SPLIT = 0.2
"""Share of the query groups that validate."""
MIN_VALID_GROUPS = 20
"""Quality gates are judged on at least this many validation groups."""

EVALUATE_K = (1, 3, 5, 10)
"""The cut-offs an evaluation reports NDCG at."""
BOOTSTRAP_RESAMPLES = 1000

DEFAULT_LAMBDA = 0.7
"""MMR's trade-off: 1 = relevance only, 0 = diversity only."""
DIVERSIFY_DEPTH = 100
"""Slots MMR fills when no top-k is given, and how many items ``diversity`` covers at most."""

HISTORY_LIMIT = 100
"""How many of a user's most recent interactions ``history`` lists."""

SAMPLE_ASSESSMENTS = 300
"""How many assessments ``sample`` simulates (about 20 interactions each)."""
SAMPLE_START = datetime(2025, 9, 1)
"""The first day ``sample`` simulates (UTC)."""
SAMPLE_DAYS = 60
"""How many days ``sample`` simulates."""

ATTRIBUTION_HOURS = 24.0
"""An interaction without a ``request_id`` belongs to the newest served list that showed its
recommendation at most this many hours before it."""
IPS_CLIP = 10.0
"""Inverse-propensity weights are clipped to at most this."""

DEFAULT_TEMPERATURE = 0.1
"""Plackett-Luce exploration: each slot is drawn from softmax(objective / temperature), the objective
being MMR's value at that step (relevance scaled to 0..1). At 0.1, an item 0.1 of relevance behind
another is drawn e^-1 (about 0.37) times as often at the same step."""
DEFAULT_EPSILON = 0.1
"""Epsilon-greedy exploration: the chance that a slot is filled by a uniformly drawn remaining item
instead of MMR's choice."""
