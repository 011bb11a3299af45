"""The default label values, the TOML override and the policy hash."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recctl.errors import InputError
from recctl.labels import DEFAULT_POLICY, LabelPolicy, load_policy


def labels_of(policy: LabelPolicy, rows: list[tuple[str, float | None]]) -> list[float]:
    frame = pl.DataFrame(rows, schema={"t": pl.String, "v": pl.Float64}, orient="row")
    return frame.select(policy.label_expr(pl.col("t"), pl.col("v"))).to_series().to_list()


@pytest.mark.parametrize(
    ("interaction_type", "value", "label"),
    [
        ("implement", None, 1.0),
        ("save", None, 0.8),
        ("share", None, 0.6),
        ("click", None, 0.4),
        ("dismiss", None, 0.0),
        ("rate", 5, 1.0),
        ("rate", 3, 0.6),
        ("rate", 1, 0.2),
        ("view", None, 0.1),  # no duration
        ("view", 0, 0.1),
        ("view", 30, 0.25),  # 0.1 + 0.3 * 30/60
        ("view", 60, 0.4),
        ("view", 600, 0.4),  # capped at 60 s
    ],
)
def test_default_labels(interaction_type: str, value: float | None, label: float) -> None:
    assert labels_of(DEFAULT_POLICY, [(interaction_type, value)]) == [pytest.approx(label)]


def test_toml_overrides_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("click = 0.5\nview_full_seconds = 30\n")
    policy = load_policy(path)
    assert labels_of(policy, [("click", None), ("view", 15), ("save", None)]) == [
        pytest.approx(0.5),
        pytest.approx(0.25),
        pytest.approx(0.8),
    ]
    assert policy.content_hash() != DEFAULT_POLICY.content_hash()
    # The hash is of the values, not of the file's formatting.
    path.write_text("# same values\nview_full_seconds = 30.0\nclick = 0.50\n")
    assert load_policy(path).content_hash() == policy.content_hash()


def test_default_hash_is_stable() -> None:
    assert DEFAULT_POLICY.content_hash() == LabelPolicy().content_hash()
    assert len(DEFAULT_POLICY.content_hash()) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clik = 0.5\n", "unknown label policy key(s) clik"),
        ("click = 'high'\n", "click must be a finite number"),
        ("click = 1.5\n", "click must be between 0 and 1"),
        ("view_base = 0.8\nview_bonus = 0.5\n", "view_base [+] view_bonus"),
        ("click = \n", "not valid TOML"),
    ],
)
def test_bad_policy_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(path)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read label policy"):
        load_policy(tmp_path / "nope.toml")
