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

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from recctl import defaults
from recctl.errors import InputError, InsufficientDataError
from recctl.ltrdata import UNKNOWN_POSITION, LtrData

Method = Literal["none", "position", "ips"]
Requested = Literal["auto", "none", "position", "ips"]
METHODS: tuple[Requested, ...] = ("auto", "none", "position", "ips")


@dataclass(frozen=True)
class ExaminationCurve:
    """Examination probability per position, relative to position 0 (a bias curve file).

    ``examination[p]`` is the value at position ``p``; positions beyond the curve take its last
    value. ``source`` says where it came from (a path, or ``estimated``); ``document`` is the curve
    as read (kept whole in the model's meta).
    """

    examination: npt.NDArray[np.float64]
    method: str
    source: str
    document: dict[str, Any] = field(default_factory=dict)

    def examination_at(self, positions: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.float64]:
        """The curve's value at each of ``positions`` (>= 0; beyond the curve: its last value)."""
        index = np.clip(np.asarray(positions, dtype=np.int64), 0, len(self.examination) - 1)
        return self.examination[index]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.document,
            "method": self.method,
            "source": self.source,
            "positions": self.document.get("positions")
            or [{"position": p, "examination": float(e)} for p, e in enumerate(self.examination)],
        }


class BiasCurveError(InputError):
    """A bias curve file that cannot be read; ``message(flag)`` names the option it came from."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(self.message())

    def message(self, flag: Callable[[str], str] | None = None) -> str:
        subject = f"{flag('bias')} {self.path}" if flag else f"bias curve {self.path}"
        return f"{subject}: {self.reason}"


def read_bias_curve(path: str | Path) -> ExaminationCurve:
    """A bias curve JSON file: ``{"method": ..., "positions": [{"position": 0, "examination": 1.0,
    ...}, ...]}`` with positions 0, 1, 2, ... in order and examinations > 0 and finite.

    Raises :class:`BiasCurveError` (one line) for anything else.
    """
    location = Path(path)
    try:
        document = json.loads(location.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BiasCurveError(location, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BiasCurveError(location, f"cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BiasCurveError(location, f"not JSON ({exc.msg} at line {exc.lineno})") from None
    positions = document.get("positions") if isinstance(document, dict) else None
    if not isinstance(positions, list) or not positions:
        raise BiasCurveError(location, 'no "positions" list (is it the output of `recctl bias --out`?)')
    slots, values = [], []
    for entry in positions:
        slot = entry.get("position") if isinstance(entry, dict) else None
        value = entry.get("examination") if isinstance(entry, dict) else None
        if isinstance(slot, bool) or not isinstance(slot, int):
            raise BiasCurveError(location, f"every position needs an integer 'position', got {entry!r}")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not np.isfinite(value)
            or value <= 0
        ):
            raise BiasCurveError(
                location, f"position {slot}: examination must be a number > 0, not {value!r}"
            )
        slots.append(slot)
        values.append(float(value))
    if slots != list(range(len(slots))):
        raise BiasCurveError(location, "positions must be 0, 1, 2, ... in order")
    return ExaminationCurve(
        np.asarray(values, dtype=np.float64), str(document.get("method", "unknown")), str(location), document
    )


@dataclass(frozen=True)
class DebiasPlan:
    """The correction a training run applies: ``method``, why (``reason``), and for ``ips`` the
    curve, the clip and one weight per training row."""

    requested: Requested
    method: Method
    reason: str
    curve: ExaminationCurve | None = None
    clip: float | None = None
    weights: npt.NDArray[np.float64] | None = None

    def as_json(self) -> dict[str, Any]:
        """What the report, ``--json`` and the model's meta say of it."""
        summary: dict[str, Any] = {"requested": self.requested, "method": self.method, "reason": self.reason}
        if self.method == "ips" and self.weights is not None and self.clip is not None:
            summary["ips_clip"] = self.clip
            summary["weights"] = _weight_summary(self.weights, self.clip)
        summary["curve"] = self.curve.as_json() if self.curve is not None else None
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


def ips_weights(data: LtrData, curve: ExaminationCurve, clip: float) -> npt.NDArray[np.float64]:
    """One weight per row: ``min(1 / examination(position), clip)`` for relevant rows (grade >= 1),
    1.0 for the others. Every relevant row must have a position (see :func:`choose_method`)."""
    weights = np.ones(data.num_rows, dtype=np.float64)
    relevant = data.grades >= 1
    if data.position is None or not relevant.any():
        return weights
    examination = curve.examination_at(data.position[relevant])
    weights[relevant] = np.minimum(1.0 / examination, clip)
    return weights


def plan_debias(
    data: LtrData,
    requested: Requested = "auto",
    *,
    curve: ExaminationCurve | None = None,
    clip: float = defaults.IPS_CLIP,
) -> DebiasPlan:
    """The correction to train ``data`` with (see the module docstring).

    ``ips`` needs ``curve``: asked for explicitly without one it is :class:`InputError`; chosen by
    ``auto`` without one, the plan falls back to ``none`` and its reason says so.
    """
    if not clip >= 1.0:
        raise InputError(f"the IPS clip must be >= 1, got {clip}")
    method, reason = choose_method(data, requested)
    if method == "ips" and curve is None:
        if requested == "ips":
            raise InputError("ips debiasing needs a bias curve (a file written by `recctl bias --out`)")
        return DebiasPlan(requested, "none", f"{reason}, but no bias curve was given for ips")
    if method == "ips":
        assert curve is not None
        return DebiasPlan(requested, "ips", reason, curve, clip, ips_weights(data, curve, clip))
    return DebiasPlan(requested, method, reason, curve if method == "position" else None)


def _weight_summary(weights: npt.NDArray[np.float64], clip: float) -> dict[str, Any]:
    return {
        "mean": round(float(weights.mean()), 6) if len(weights) else None,
        "max": round(float(weights.max()), 6) if len(weights) else None,
        "clipped": int((weights >= clip).sum()),
    }
