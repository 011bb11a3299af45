"""Label policy: how an interaction becomes a relevance label in [0, 1].

The default policy is the original system's. A TOML file may override any value; its content hash
(:meth:`LabelPolicy.content_hash`) goes into every manifest and model bundle so a model can be
traced to the labels it learnt from.

Example policy file (every key optional)::

    implement = 1.0
    save = 0.8
    share = 0.6
    click = 0.4
    dismiss = 0.0
    rate_max_stars = 5          # rate label = stars / rate_max_stars
    view_base = 0.1             # view label = view_base + view_bonus * min(seconds, full) / full
    view_bonus = 0.3
    view_full_seconds = 60      # "full" above
    click_strength = 0.4        # a dismissed pair keeps its label only if something reached this label
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from recctl.errors import InputError

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class LabelPolicy:
    """Label values per interaction type; defaults are the original system's."""

    implement: float = 1.0
    save: float = 0.8
    share: float = 0.6
    click: float = 0.4
    dismiss: float = 0.0
    rate_max_stars: float = 5.0
    view_base: float = 0.1
    view_bonus: float = 0.3
    view_full_seconds: float = 60.0
    click_strength: float = 0.4

    @classmethod
    def from_toml(cls, path: str | Path) -> LabelPolicy:
        """Read a policy file; unknown keys and out-of-range values raise :class:`InputError`."""
        path = Path(path)
        try:
            overrides = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read label policy {path}: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"label policy {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(overrides, source=str(path))

    @classmethod
    def from_mapping(cls, overrides: dict[str, object], *, source: str = "policy") -> LabelPolicy:
        """Build a policy from a mapping of overrides (validated like a TOML file)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"{source}: unknown label policy key(s) {', '.join(unknown)}")
        values: dict[str, float] = {}
        for key, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"{source}: {key} must be a finite number")
            values[key] = float(value)
        policy = replace(cls(), **values)
        policy._check(source)
        return policy

    def _check(self, source: str) -> None:
        for name in ("implement", "save", "share", "click", "dismiss", "view_base", "click_strength"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{source}: {name} must be between 0 and 1")
        if self.view_base + self.view_bonus > 1.0 or self.view_bonus < 0:
            raise InputError(f"{source}: view_base + view_bonus must stay within 0..1")
        if self.rate_max_stars < 1 or self.view_full_seconds <= 0:
            raise InputError(f"{source}: rate_max_stars must be >= 1 and view_full_seconds > 0")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def content_hash(self) -> str:
        """A stable hash of the policy's values (not of the file's formatting): 16 hex digits."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def label_expr(self, interaction_type: pl.Expr, interaction_value: pl.Expr) -> pl.Expr:
        """A polars expression giving each interaction's label.

        ``interaction_type`` must already be lowercase and valid. A ``view`` with no duration gets
        ``view_base``; a negative duration is a validation error before this is reached.
        """
        import polars as pl

        seconds = interaction_value.clip(upper_bound=self.view_full_seconds)
        view = (
            pl.when(interaction_value.is_null())
            .then(pl.lit(self.view_base))
            .otherwise(self.view_base + self.view_bonus * seconds / self.view_full_seconds)
        )
        fixed = interaction_type.replace_strict(
            {t: getattr(self, t) for t in ("implement", "save", "share", "click", "dismiss")},
            default=None,
            return_dtype=pl.Float64,
        )
        return (
            pl.when(interaction_type == "view")
            .then(view)
            .when(interaction_type == "rate")
            .then(interaction_value / self.rate_max_stars)
            .otherwise(fixed)
            .cast(pl.Float64)
        )


DEFAULT_POLICY = LabelPolicy()


def load_policy(path: str | Path | None) -> LabelPolicy:
    """The policy in ``path``, or the default one when ``path`` is None."""
    return DEFAULT_POLICY if path is None else LabelPolicy.from_toml(path)
