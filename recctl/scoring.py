"""Scoring a LightGBM text model with numpy, without importing lightgbm (about 250 ms to import).

``recctl rank`` runs once per request in shell pipelines, so start-up time matters. A LightGBM
model for ranking is a sum of regression trees; this module reads the trees from the text format
and walks all of them for all rows at once with numpy fancy indexing. The decision rule copies
LightGBM's ``Tree::NumericalDecision`` (missing values, zero threshold, default direction) and
the tree outputs are added in tree order, so the result equals ``Booster.predict`` bit for bit
(a test checks it on random data with NaN and zero values).

Models this reader does not handle (categorical splits, linear trees) raise
:class:`UnsupportedModel`; callers then fall back to the lightgbm package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_ZERO = 1
_MISSING_NAN = 2
_ZERO_THRESHOLD = 1e-35


class UnsupportedModel(ValueError):
    """The model uses something the numpy scorer does not implement."""


@dataclass(frozen=True)
class TreeEnsemble:
    """All trees of a model in flat arrays.

    Internal nodes are numbered globally; a child ``c < 0`` is the leaf ``-c - 1`` (global leaf id).
    ``roots[t]`` is tree t's first node, or its only leaf (negative) for a one-leaf tree.
    """

    feature_names: list[str]
    split_feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    default_left: npt.NDArray[np.bool_]
    missing_type: npt.NDArray[np.int64]
    left_child: npt.NDArray[np.int64]
    right_child: npt.NDArray[np.int64]
    leaf_value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.int64]

    @classmethod
    def from_model_text(cls, text: str) -> TreeEnsemble:
        """Parse LightGBM's text model format (``Booster.model_to_string``)."""
        header, _, body = text.partition("\nTree=")
        body = body.partition("end of trees")[0]
        fields = _key_values(header)
        if "feature_names" not in fields:
            raise UnsupportedModel("no feature_names in the model header")
        feature_names = fields["feature_names"].split(" ")
        trees = [_key_values(block) for block in ("Tree=" + body).split("\nTree=") if block.strip()]
        split_feature: list[npt.NDArray[np.int64]] = []
        threshold: list[npt.NDArray[np.float64]] = []
        decision: list[npt.NDArray[np.int64]] = []
        left: list[npt.NDArray[np.int64]] = []
        right: list[npt.NDArray[np.int64]] = []
        leaves: list[npt.NDArray[np.float64]] = []
        roots: list[int] = []
        node_offset = leaf_offset = 0
        for tree in trees:
            if "leaf_value" not in tree:
                raise UnsupportedModel(f"tree {tree.get('Tree', '?')} has no leaf_value")
            if tree.get("is_linear", "0") != "0":
                raise UnsupportedModel("linear trees")
            if tree.get("num_cat", "0") != "0":
                raise UnsupportedModel("categorical splits")
            values = np.array(tree["leaf_value"].split(" "), dtype=np.float64)
            num_leaves = int(tree["num_leaves"])
            if num_leaves == 1:
                roots.append(-leaf_offset - 1)
            else:
                kinds = np.array(tree["decision_type"].split(" "), dtype=np.int64)
                if (kinds & _CATEGORICAL).any():
                    raise UnsupportedModel("categorical splits")
                children = [
                    np.array(tree[name].split(" "), dtype=np.int64) for name in ("left_child", "right_child")
                ]
                # Re-number: internal node i -> node_offset + i, leaf j (stored as ~j) -> ~(leaf_offset + j).
                left.append(np.where(children[0] >= 0, children[0] + node_offset, children[0] - leaf_offset))
                right.append(np.where(children[1] >= 0, children[1] + node_offset, children[1] - leaf_offset))
                split_feature.append(np.array(tree["split_feature"].split(" "), dtype=np.int64))
                threshold.append(np.array(tree["threshold"].split(" "), dtype=np.float64))
                decision.append(kinds)
                roots.append(node_offset)
                node_offset += num_leaves - 1
            leaves.append(values)
            leaf_offset += num_leaves
        if not leaves:
            raise UnsupportedModel("the model has no trees")
        kinds_all = np.concatenate(decision) if decision else np.zeros(0, dtype=np.int64)
        return cls(
            feature_names=feature_names,
            split_feature=np.concatenate(split_feature) if split_feature else np.zeros(0, dtype=np.int64),
            threshold=np.concatenate(threshold) if threshold else np.zeros(0, dtype=np.float64),
            default_left=(kinds_all & _DEFAULT_LEFT).astype(bool),
            missing_type=(kinds_all >> 2) & 3,
            left_child=np.concatenate(left) if left else np.zeros(0, dtype=np.int64),
            right_child=np.concatenate(right) if right else np.zeros(0, dtype=np.int64),
            leaf_value=np.concatenate(leaves),
            roots=np.array(roots, dtype=np.int64),
        )

    def predict(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Raw scores for a (rows, features) float64 matrix; NaN means missing."""
        rows = features.shape[0]
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} feature columns, got {features.shape}")
        node = np.broadcast_to(self.roots, (rows, len(self.roots))).copy()
        row_index = np.broadcast_to(np.arange(rows)[:, None], node.shape)
        active = node >= 0
        while active.any():
            at = node[active]
            value = features[row_index[active], self.split_feature[at]]
            missing = self.missing_type[at]
            value = np.where(np.isnan(value) & (missing != _MISSING_NAN), 0.0, value)
            to_default = ((missing == _MISSING_ZERO) & (np.abs(value) <= _ZERO_THRESHOLD)) | (
                (missing == _MISSING_NAN) & np.isnan(value)
            )
            go_left = np.where(to_default, self.default_left[at], value <= self.threshold[at])
            node[active] = np.where(go_left, self.left_child[at], self.right_child[at])
            active = node >= 0
        outputs = self.leaf_value[-node - 1]
        # LightGBM adds tree outputs one after another; cumsum keeps that order (a plain sum would not).
        return np.cumsum(outputs, axis=1)[:, -1] if outputs.shape[1] else np.zeros(rows)


def _key_values(block: str) -> dict[str, str]:
    values = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values
