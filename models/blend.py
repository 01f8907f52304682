"""A weighted blend of several recommenders, so one model can use what the others know.

EASE, RP3beta, item-to-item and ALS make different mistakes (EASE is a global linear model,
RP3beta favours the long tail, item-to-item is local, ALS is low-rank), so a weighted sum of
their scores often ranks better than any one of them. Scores live on different scales, so
each component's row is standardised (z-score per user) before weighting. The weights are
hyperparameters: :mod:`models.evaluation.blending` tunes them on the validation split carved
from training, like every other hyperparameter, and the gate picks the blend only when it
wins there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from features.interactions import Interactions

# The classes a blend may combine register themselves in MODEL_CLASSES when imported; a blend
# built directly (not through models.factory) must know them all (it failed with KeyError: 'ease').
from models import baselines, ease, factorization, graph, neighbors  # noqa: F401
from models.base import MODEL_CLASSES, Recommender
from models.exceptions import NotFittedError

#: EASE (global, linear) + ALS (low-rank): the pair whose blend improved both validation and
#: test on every dev set; RP3beta and item2item are local item-to-item models like EASE, and
#: adding them improved validation but not test (docs/models.md, "Blend").
DEFAULT_COMPONENTS = ("ease", "als")


def standardise(scores: np.ndarray) -> np.ndarray:
    """Z-score each row (float32); constant rows become zeros."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim == 1:
        return standardise(scores[None, :])[0]
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    return (scores - mean) / std


class BlendRecommender(Recommender):
    """Weighted sum of standardised component scores.

    Parameters
    ----------
    models : list of str
        Component model names (no nested blends).
    weights : list of float
        One weight per component; zero-weight components are not fitted.
    params : dict
        Per-component hyperparameters, by model name.
    """

    name = "blend"
    components: list[Recommender] | None = None
    #: Optional ``(name, params, interactions) -> fitted model``: lets the evaluator hand over
    #: components it has already fitted with the same params on the same matrix
    #: (``models.evaluation.fit_cache``); None fits each component here.
    component_source: Callable[[str, dict[str, Any], Interactions], Recommender] | None = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"models": list(DEFAULT_COMPONENTS), "weights": [1.0, 0.5], "params": {}}

    def _active(self) -> list[tuple[str, float]]:
        names, weights = list(self.params["models"]), list(self.params["weights"])
        if len(names) != len(weights):
            raise ValueError("blend: models and weights must have the same length")
        if self.name in names:
            raise ValueError("blend: a blend cannot contain a blend")
        active = [(n, float(w)) for n, w in zip(names, weights, strict=True) if float(w) != 0]
        if not active:
            raise ValueError("blend: every weight is zero")
        return active

    def _component(self, name: str) -> Recommender:
        model = MODEL_CLASSES[name](**dict(self.params["params"]).get(name, {}))
        model.users, model.items = self.users, self.items
        model.user_items, model.item_popularity = self.user_items, self.item_popularity
        return model

    def _fit(self, interactions: Interactions) -> None:
        self.components = []
        for name, _ in self._active():
            if self.component_source is not None:
                params = dict(dict(self.params["params"]).get(name, {}))
                self.components.append(self.component_source(name, params, interactions))
                continue
            model = self._component(name)
            model._fit(interactions)
            self.components.append(model)

    def _parts(self) -> list[tuple[Recommender, float]]:
        if self.components is None:
            raise NotFittedError("blend is not fitted")
        weights = [w for _, w in self._active()]
        return list(zip(self.components, weights, strict=True))

    def _combine(self, score: Callable[[Recommender], np.ndarray]) -> np.ndarray:
        total = None
        for model, weight in self._parts():
            part = weight * standardise(score(model))
            total = part if total is None else total + part
        assert total is not None
        return total

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        return self._combine(lambda m: m._score_users(rows))

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return self._combine(lambda m: m._fold_in_scores(item_rows, weights))

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        sims = self._combine(lambda m: np.nan_to_num(m._similarity_rows(item_rows), neginf=0.0))
        return sims

    def _state(self) -> dict[str, np.ndarray]:
        state = {}
        for i, (model, _) in enumerate(self._parts()):
            state.update({f"{i}_{key}": value for key, value in model._state().items()})
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.components = []
        for i, (name, _) in enumerate(self._active()):
            model = self._component(name)
            prefix = f"{i}_"
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            model._set_state(own)
            self.components.append(model)
