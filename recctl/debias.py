"""Training on clicks without learning the old order back: which position correction to apply.

Users examine the top of a list far more than its bottom, so a click says "relevant *and* looked
at". Two corrections are offered (``recctl train --debias``):

- ``position``: LightGBM's position-debiased LambdaMART. Every training row's 0-based slot goes
  into the Dataset (``lightgbm.Dataset(position=...)``); LightGBM learns one bias factor per
  position beside the trees (``lambdarank_position_bias_regularization`` shrinks them). The model
  itself scores without positions.
- ``ips``: inverse propensity weights. Each relevant row (grade >= 1) is weighted by
  ``min(1 / examination(position), clip)``, with the examination curve relative to position 0
  (a bias curve, as ``recctl bias`` writes it); other rows keep weight 1. LightGBM's row weights
  scale the *sum* of a row's pairwise lambdas (and hessians), not each pair's lambda, so this is
  the usual per-document approximation of pairwise IPS, not the exact estimator.

``auto`` picks ``position`` when every row has a position (the lists of impressions), ``ips``
when only the relevant rows have one (positions logged with interactions), and ``none`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.bias import BiasCurve
from recctl.errors import InputError, InsufficientDataError
from recctl.ltrdata import UNKNOWN_POSITION, LtrData

Method = Literal["none", "position", "ips"]
Requested = Literal["auto", "none", "position", "ips"]
METHODS: tuple[Requested, ...] = ("auto", "none", "position", "ips")


ESTIMATE_RESAMPLES = 20
"""Bootstrap resamples of a curve estimated for training (its intervals are only reported)."""


def estimated_curve(click_log: Any) -> tuple[BiasCurve | None, str]:
    """The bias curve of a training window's lists (:func:`recctl.bias.estimate_bias`), or None
    and the reason there is none (too few clicks, or position confounded with relevance)."""
    from recctl.bias import estimate_bias

    try:
        curve = estimate_bias(click_log, resamples=ESTIMATE_RESAMPLES)
    except InsufficientDataError as exc:
        return None, str(exc)
    return curve, f"estimated from the window's lists ({curve.method})"


def with_window_curve(train_options: Any, click_log: Any) -> tuple[Any, str | None]:
    """``train_options`` (a :class:`~recctl.training.TrainOptions`) with the curve of the training
    window's own lists (``click_log``) when it has none and a correction may need one (ips weights;
    early stopping on the IPS estimate of NDCG), and why there is none (None: nothing to say)."""
    import dataclasses

    if train_options.bias_curve is not None or train_options.debias == "none" or click_log is None:
        return train_options, None
    curve, note = estimated_curve(click_log)
    if curve is None:
        return train_options, note
    return dataclasses.replace(train_options, bias_curve=curve, bias_curve_source="estimated"), None


def read_bias_curve(path: str | Path) -> BiasCurve:
    """The bias curve saved at ``path`` (by ``recctl bias --out``); :class:`InputError` (one line)
    when it cannot be read or is not one."""
    return BiasCurve.load(path)


@dataclass(frozen=True)
class DebiasPlan:
    """The correction a training run applies: ``method``, why (``reason``), the bias curve (for
    ``ips`` weights, and for early stopping on the IPS estimate of NDCG) and where it came from
    (``curve_source``: a path, or ``estimated`` from the training window's lists), and for
    ``ips`` the clip and one weight per training row."""

    requested: Requested
    method: Method
    reason: str
    curve: BiasCurve | None = None
    clip: float | None = None
    weights: npt.NDArray[np.float64] | None = None
    curve_source: str | None = None

    def as_json(self) -> dict[str, Any]:
        """What the report, ``--json`` and the model's meta say of it."""
        summary: dict[str, Any] = {"requested": self.requested, "method": self.method, "reason": self.reason}
        if self.method == "ips" and self.weights is not None and self.clip is not None:
            summary["ips_clip"] = self.clip
            summary["weights"] = _weight_summary(self.weights, self.clip)
        summary["curve"] = (
            {**self.curve.as_json(), "source": self.curve_source} if self.curve is not None else None
        )
        return summary


def position_coverage(data: LtrData) -> tuple[int, int, int, int]:
    """(rows, rows with a position, relevant rows, relevant rows with a position)."""
    relevant = data.grades >= 1
    if data.position is None:
        return data.num_rows, 0, int(relevant.sum()), 0
    known = data.position != UNKNOWN_POSITION
    return data.num_rows, int(known.sum()), int(relevant.sum()), int((known & relevant).sum())


def choose_method(data: LtrData, requested: Requested) -> tuple[Method, str]:
    """The method ``requested`` resolves to on ``data``, and why.

    ``auto``: ``position`` when every row has a position, ``ips`` when every relevant row (and not
    every row) has one, ``none`` otherwise. An explicit ``position`` or ``ips`` that the data
    cannot support is :class:`InsufficientDataError`.
    """
    rows, known, relevant, relevant_known = position_coverage(data)
    if requested == "none":
        return "none", "asked for"
    if requested == "position":
        if known < rows:
            raise InsufficientDataError(
                f"position debiasing needs every row's position; {rows - known:,} of {rows:,} rows have "
                "none (train on impressions, or use ips)"
            )
        return "position", "asked for"
    if requested == "ips":
        if relevant_known < relevant or relevant == 0:
            raise InsufficientDataError(
                f"ips needs the position of every relevant row; {relevant - relevant_known:,} of "
                f"{relevant:,} relevant rows have none"
            )
        return "ips", "asked for"
    if rows and known == rows:
        return "position", "every row has a position (impression lists)"
    if relevant and relevant_known == relevant:
        return "ips", "only the relevant rows have a position"
    if known == 0:
        return "none", "no row has a position"
    return "none", f"{relevant - relevant_known:,} of {relevant:,} relevant rows have no position"


def ips_weights(data: LtrData, curve: BiasCurve, clip: float) -> npt.NDArray[np.float64]:
    """One weight per row: ``min(1 / examination(position), clip)`` for relevant rows (grade >= 1),
    1.0 for the others; an examination of 0 (or not a number) gives ``clip``. Every relevant row
    must have a position (see :func:`choose_method`)."""
    weights = np.ones(data.num_rows, dtype=np.float64)
    relevant = data.grades >= 1
    if data.position is None or not relevant.any():
        return weights
    examination = curve.examination_at(data.position[relevant])
    usable = np.isfinite(examination) & (examination > 0)
    inverse = np.divide(1.0, examination, out=np.full(examination.shape, np.inf), where=usable)
    weights[relevant] = np.minimum(inverse, clip)
    return weights


def plan_debias(
    data: LtrData,
    requested: Requested = "auto",
    *,
    curve: BiasCurve | None = None,
    curve_source: str | None = None,
    clip: float = defaults.IPS_CLIP,
) -> DebiasPlan:
    """The correction to train ``data`` with (see the module docstring).

    ``ips`` needs ``curve``: asked for explicitly without one it is :class:`InputError`; chosen by
    ``auto`` without one, the plan falls back to ``none`` and its reason says so. ``position``
    keeps the curve when there is one: early stopping then watches the IPS estimate of NDCG.
    """
    if not clip >= 1.0:
        raise InputError(f"the IPS clip must be >= 1, got {clip}")
    method, reason = choose_method(data, requested)
    if method == "ips" and curve is None:
        if requested == "ips":
            raise InputError("ips debiasing needs a bias curve (a file written by `recctl bias --out`)")
        return DebiasPlan(requested, "none", f"{reason}, but no bias curve was given for ips")
    if method == "ips" and curve is not None:
        weights = ips_weights(data, curve, clip)
        return DebiasPlan(requested, "ips", reason, curve, clip, weights, curve_source)
    if method == "position" and curve is not None:
        return DebiasPlan(requested, "position", reason, curve, curve_source=curve_source)
    return DebiasPlan(requested, method, reason)


def _weight_summary(weights: npt.NDArray[np.float64], clip: float) -> dict[str, Any]:
    return {
        "mean": round(float(weights.mean()), 6) if len(weights) else None,
        "max": round(float(weights.max()), 6) if len(weights) else None,
        "clipped": int((weights >= clip).sum()),
    }
