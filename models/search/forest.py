"""Predict with a fitted tree ensemble from flat node arrays.

Why: scikit-learn predicts tree by tree, one Python-level call into Cython per tree plus input
validation, so the 100-tree ranker cost about 1 ms per rerank of 200 candidates, a fifth of a
search's first computation. Here the trees are flattened once into arrays and walked by
compiled code (``forest_kernel``, ~0.2 ms), or, without numba, by numpy passes in which every
(candidate, tree) pair still inside its tree takes one step (~0.6 ms).

The results equal ``model.predict`` exactly: the same float64 ``x <= threshold`` test, the same
missing-value direction, leaf values added to the baseline tree by tree in the same order, and
the same inverse link. A LightGBM ranker (``LGBMRanker``, the judged trainer's LambdaMART) is
flattened from its own tree dump: raw scores are the sum of its leaf values, tree by tree, with
the same ``x <= threshold`` test (equal to its ``predict`` up to float rounding of the sum;
rows with missing values go to its own ``predict``). Anything else (categorical splits,
several trees per iteration, another model type, a scikit-learn whose internals moved) is
predicted by the model itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.search import forest_kernel


@dataclass(frozen=True, slots=True)
class CompiledForest:
    """All trees of one model as flat node arrays, indexed globally."""

    feature: np.ndarray  # intp, split feature per node (0 for leaves)
    threshold: np.ndarray  # float64
    missing_right: np.ndarray  # bool: a missing value goes to the right child
    children: np.ndarray  # intp, flat [2 * node + (0 left | 1 right)] -> node
    is_leaf: np.ndarray  # bool
    value: np.ndarray  # float64, leaf value (0 for splits)
    roots: np.ndarray  # intp, each tree's root
    n_features: int
    baseline: float
    inverse_link: Callable[[np.ndarray], np.ndarray]
    #: Whether missing values follow ``missing_right`` exactly as the model sends them.
    exact_missing: bool = True

    @classmethod
    def from_model(cls, model: Any) -> CompiledForest | None:
        """Flatten a fitted ``HistGradientBoostingRegressor`` or ``LGBMRanker``; None if it
        can't be exact."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        try:
            if type(model) is HistGradientBoostingRegressor:
                return cls._flatten(model)
            if type(model).__name__ == "LGBMRanker" and type(model).__module__.startswith(
                "lightgbm"
            ):
                return cls._flatten_lightgbm(model)
        except (AttributeError, KeyError, ValueError, TypeError):
            pass  # another layout: the model's own predict stays correct
        return None

    @classmethod
    def _flatten_lightgbm(cls, model: Any) -> CompiledForest | None:
        dump = model.booster_.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("average_output"):
            return None
        feature, threshold, default_left, leaf, value = [], [], [], [], []
        children: list[tuple[int, int]] = []
        roots = []

        def add(node: dict) -> int:
            at = len(feature)
            feature.append(0)
            threshold.append(0.0)
            default_left.append(True)
            leaf.append("leaf_value" in node)
            value.append(float(node.get("leaf_value", 0.0)))
            children.append((at, at))
            if not leaf[at]:
                if node["decision_type"] != "<=" or node.get("missing_type") == "Zero":
                    raise ValueError("split LightGBM dumps that this copy does not replay")
                feature[at] = int(node["split_feature"])
                threshold[at] = float(node["threshold"])
                default_left[at] = bool(node["default_left"])
                left = add(node["left_child"])
                children[at] = (left, add(node["right_child"]))
            return at

        for tree in dump["tree_info"]:
            roots.append(add(tree["tree_structure"]))
        return cls(
            feature=np.asarray(feature, dtype=np.intp),
            threshold=np.asarray(threshold, dtype=np.float64),
            missing_right=~np.asarray(default_left, dtype=bool),
            children=np.asarray(children, dtype=np.intp).ravel(),
            is_leaf=np.asarray(leaf, dtype=bool),
            value=np.asarray(value, dtype=np.float64),
            roots=np.asarray(roots, dtype=np.intp),
            n_features=int(dump["max_feature_idx"]) + 1,
            baseline=0.0,
            inverse_link=_identity,
            exact_missing=False,
        )

    @classmethod
    def _flatten(cls, model: Any) -> CompiledForest | None:
        if model.n_trees_per_iteration_ != 1:
            return None
        trees = [predictors[0].nodes for predictors in model._predictors]
        if not trees or any(bool(nodes["is_categorical"].any()) for nodes in trees):
            return None
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
        if baseline.size != 1:
            return None
        sizes = np.array([len(nodes) for nodes in trees])
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate(trees)
        shift = np.repeat(roots, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        left = nodes["left"].astype(np.intp) + shift
        right = nodes["right"].astype(np.intp) + shift
        return cls(
            feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_right=~nodes["missing_go_to_left"].astype(bool),
            children=np.stack([left, right], axis=1).ravel(),
            is_leaf=leaf,
            value=np.where(leaf, nodes["value"], 0.0).astype(np.float64),
            roots=roots,
            n_features=int(model.n_features_in_),
            baseline=float(baseline[0]),
            inverse_link=model._loss.link.inverse,
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` (n × features)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got shape {x.shape}")
        missing = bool(np.isnan(x).any())
        if missing and not self.exact_missing:
            raise _MissingValues
        walk = forest_kernel.kernel()
        if walk is not None:
            raw = walk(
                x,
                self.feature,
                self.threshold,
                self.missing_right,
                self.children,
                self.is_leaf,
                self.value,
                self.roots,
                self.baseline,
                missing,
            )
            return self.inverse_link(raw)
        return self.inverse_link(self._raw_numpy(x, missing))

    def _raw_numpy(self, x: np.ndarray, missing: bool) -> np.ndarray:
        """Raw scores by numpy passes, one per tree level (when numba is not installed)."""
        n, trees = len(x), len(self.roots)
        flat = x.ravel()
        base = np.repeat(np.arange(n, dtype=np.intp) * self.n_features, trees)
        node = np.tile(self.roots, n)  # (candidate, tree) pairs, candidate-major
        todo = np.flatnonzero(~self.is_leaf[node])
        while todo.size:
            at = node[todo]
            values = flat[base[todo] + self.feature[at]]
            # Right when x > threshold; NaN compares False, so it goes left unless told not to.
            right = values > self.threshold[at]
            if missing:
                right |= np.isnan(values) & self.missing_right[at]
            at = self.children[2 * at + right]
            node[todo] = at
            todo = todo[~self.is_leaf[at]]
        block = np.empty((n, trees + 1), dtype=np.float64)
        block[:, 0] = self.baseline
        block[:, 1:] = self.value[node].reshape(n, trees)
        # Accumulate left to right, as scikit-learn adds one tree after the other.
        return np.add.accumulate(block, axis=1)[:, -1]


class _MissingValues(Exception):
    """Rows with missing values for a forest that cannot route them as its model does."""


def _identity(raw: np.ndarray) -> np.ndarray:
    return raw


_COMPILED: weakref.WeakKeyDictionary[Any, CompiledForest | None] = weakref.WeakKeyDictionary()


def _compiled(model: Any) -> CompiledForest | None:
    """The compiled copy of ``model`` (made on first use), None when it has none."""
    try:
        return _COMPILED[model]
    except KeyError:
        compiled = _COMPILED[model] = CompiledForest.from_model(model)
        return compiled
    except TypeError:  # not weak-referenceable
        return None


def prepare(model: Any) -> None:
    """Flatten ``model`` and compile the traversal now, so that a server pays it when it
    loads a ranker rather than on the first search it reranks (~1 s the first time)."""
    compiled = _compiled(model)
    if compiled is not None:
        compiled.predict(np.zeros((1, compiled.n_features)))


def predict(
    model: Any,
    x: np.ndarray,
    around_model: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> np.ndarray:
    """``model.predict(x)``, through a compiled copy of the model when it has one.

    Compiled once per model object (a new ranker version is a new object). ``around_model``
    is entered only when the model's own ``predict`` runs (e.g. a thread limit for its
    OpenMP pool): setting it up on every call cost more than the compiled prediction saved.
    """
    compiled = _compiled(model)
    if compiled is not None:
        try:
            return compiled.predict(x)
        except _MissingValues:
            pass
    with around_model():
        return model.predict(x)
