"""The ``Recommender`` contract shared by every storeloop model.

Subclasses only say how to *score* (a dense row of item scores per user, or per set of seed
items); the base class owns everything that must behave the same for every model: id mapping,
excluding seen or filtered items, top-k, unknown-user fallback, batching, and persistence. That
keeps the business of "what may be shown" in one place and makes models interchangeable in
evaluation, the registry and serving.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from features.id_map import IdMap
from features.interactions import Interactions
from models.exceptions import ModelFitError, NotFittedError, UnknownModelError
from models.topk import topk_rows

#: Every concrete model class by its ``name``; filled by ``__init_subclass__``.
MODEL_CLASSES: dict[str, type[Recommender]] = {}

_BATCH_ROWS = 512
_PARAMS_FILE = "model.json"
_ARRAYS_FILE = "arrays.npz"


class Recommender(ABC):
    """Abstract recommender over an :class:`~features.interactions.Interactions` matrix.

    Parameters
    ----------
    **params
        Hyperparameters; stored verbatim so :meth:`save` / :meth:`load` and the registry
        manifest can reproduce the model.
    """

    name: ClassVar[str] = ""
    #: Whether ``recommend`` personalises (False for baselines that rank the same for all).
    personalised: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = {**self.default_params(), **params}
        self.users: IdMap | None = None
        self.items: IdMap | None = None
        self.user_items: sp.csr_matrix | None = None
        self.item_popularity: np.ndarray | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            MODEL_CLASSES[cls.name] = cls

    # ----------------------------------------------------------------- to implement
    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """Hyperparameters used when the caller gives none."""
        return {}

    @abstractmethod
    def _fit(self, interactions: Interactions) -> None:
        """Learn model state from ``self.user_items`` (already set by :meth:`fit`)."""

    @abstractmethod
    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 scores, shape (len(rows), n_items), for known user positions."""

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to persist; default none."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned."""
        del arrays  # stateless by default

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        """Item-to-item scores, shape (len(item_rows), n_items).

        Default: cosine between item columns of the training matrix, which every model has;
        models with a better notion of similarity (factors, learned weights) override it.
        """
        matrix = self._require_fitted()
        cols = matrix[:, item_rows].T.tocsr()
        sims = (cols @ matrix).toarray().astype(np.float32)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel()).astype(np.float32)
        norms[norms == 0] = 1.0
        sims /= norms[item_rows][:, None]
        sims /= norms[None, :]
        return sims

    # ----------------------------------------------------------------- public API
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters this model was built with."""
        return dict(self.params)

    def fit(self, interactions: Interactions) -> Self:
        """Train on an interaction matrix.

        Parameters
        ----------
        interactions : Interactions
            Weighted user × item matrix with its id maps.

        Returns
        -------
        Recommender
            ``self``, for chaining.

        Raises
        ------
        ModelFitError
            When the learned state contains NaN or infinite values.
        """
        self.users = interactions.users
        self.items = interactions.items
        self.user_items = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        self.user_items.eliminate_zeros()
        self.item_popularity = np.diff(self.user_items.tocsc().indptr).astype(np.float32)
        self._fit(interactions)
        for key, array in self._state().items():
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise ModelFitError(f"{self.name}: learned {key} contains NaN or inf values")
        return self

    @property
    def n_items(self) -> int:
        """Number of items in the catalog the model was trained on."""
        return len(self._require_items())

    def recommend(
        self,
        user_ids: Sequence,
        k: int = 10,
        exclude_seen: bool = True,
        filter_items: Iterable | None = None,
    ) -> tuple[list[list], list[np.ndarray]]:
        """Top-k items for a batch of users.

        Unknown users get the popularity ranking, so the answer is never empty while the
        catalog has items left after filtering.

        Parameters
        ----------
        user_ids : sequence
            External user ids.
        k : int
            Items per user.
        exclude_seen : bool
            Drop items the user interacted with in training.
        filter_items : iterable, optional
            External item ids never to recommend (e.g. out of stock).

        Returns
        -------
        (list of list, list of numpy.ndarray)
            Item ids and scores per user, best first; a row is shorter than ``k`` only when
            fewer items remain.
        """
        users = self._require_users()
        rows = users.to_index(user_ids)
        mask = self._item_mask(filter_items)
        idx, scores = self.recommend_indices(rows, k, exclude_seen=exclude_seen, exclude_mask=mask)
        items = self._require_items()
        out_ids, out_scores = [], []
        for r in range(len(rows)):
            keep = idx[r] >= 0
            out_ids.append(items.to_ids(idx[r][keep]))
            out_scores.append(scores[r][keep])
        return out_ids, out_scores

    def recommend_indices(
        self,
        rows: np.ndarray,
        k: int,
        exclude_seen: bool = True,
        exclude_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by position: the fast path used by evaluation and serving.

        Parameters
        ----------
        rows : numpy.ndarray
            User positions; -1 marks an unknown user (popularity fallback).
        k : int
            Items per user.
        exclude_seen : bool
            Drop training items of each user.
        exclude_mask : numpy.ndarray, optional
            Boolean mask over items; True means never recommend.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Shape (len(rows), k) item positions (-1 padding) and scores (-inf padding).
        """
        matrix = self._require_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        k = min(int(k), self.n_items)
        out_idx = np.full((len(rows), k), -1, dtype=np.int64)
        out_val = np.full((len(rows), k), -np.inf, dtype=np.float32)
        for start in range(0, len(rows), _BATCH_ROWS):
            batch = rows[start : start + _BATCH_ROWS]
            scores = np.empty((len(batch), self.n_items), dtype=np.float32)
            known = batch >= 0
            if known.any():
                scores[known] = self._score_users(batch[known])
            if (~known).any():
                scores[~known] = self._fallback_scores()
            if exclude_mask is not None:
                scores[:, exclude_mask] = -np.inf
            if exclude_seen:
                for i, row in enumerate(batch):
                    if row >= 0:
                        seen = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
                        scores[i, seen] = -np.inf
            idx, val = topk_rows(scores, k)
            finite = np.isfinite(val)
            out_idx[start : start + len(batch)] = np.where(finite, idx, -1)
            out_val[start : start + len(batch)] = np.where(finite, val, -np.inf)
        return out_idx, out_val

    def similar_items(self, item_ids: Sequence, k: int = 10) -> tuple[list[list], list[np.ndarray]]:
        """The ``k`` most similar items to each given item (the item itself excluded).

        Parameters
        ----------
        item_ids : sequence
            External item ids; unknown ids give empty rows.
        k : int
            Neighbours per item.

        Returns
        -------
        (list of list, list of numpy.ndarray)
            Neighbour ids and similarity scores, best first.
        """
        items = self._require_items()
        rows = items.to_index(item_ids)
        out_ids: list[list] = []
        out_scores: list[np.ndarray] = []
        known = rows >= 0
        sims = self._similarity_rows(rows[known]) if known.any() else None
        j = 0
        for row in rows:
            if row < 0:
                out_ids.append([])
                out_scores.append(np.empty(0, dtype=np.float32))
                continue
            scores = np.array(sims[j], dtype=np.float32)
            j += 1
            scores[row] = -np.inf
            idx, val = topk_rows(scores, k)
            keep = np.isfinite(val)
            out_ids.append(items.to_ids(idx[keep]))
            out_scores.append(val[keep])
        return out_ids, out_scores

    def recommend_for_items(
        self,
        item_ids: Sequence,
        weights: Sequence[float] | None = None,
        k: int = 10,
        exclude: Iterable | None = None,
    ) -> tuple[list, np.ndarray]:
        """Fold-in: recommend for a fresh session from its latest items, without retraining.

        Parameters
        ----------
        item_ids : sequence
            Items the user/session just interacted with.
        weights : sequence of float, optional
            Confidence per item (e.g. event-type weight); default 1 each.
        k : int
            Number of items.
        exclude : iterable, optional
            Extra item ids never to recommend; the seed items are always excluded.

        Returns
        -------
        (list, numpy.ndarray)
            Item ids and scores, best first; popularity order when no seed item is known.
        """
        items = self._require_items()
        rows = items.to_index(item_ids)
        w = np.ones(len(rows), dtype=np.float32) if weights is None else np.asarray(weights)
        known = rows >= 0
        rows, w = rows[known], w[known].astype(np.float32)
        scores = self._fold_in_scores(rows, w) if len(rows) else self._fallback_scores()
        scores = np.array(scores, dtype=np.float32)
        scores[rows] = -np.inf
        mask = self._item_mask(exclude)
        if mask is not None:
            scores[mask] = -np.inf
        idx, val = topk_rows(scores, k)
        keep = np.isfinite(val)
        return items.to_ids(idx[keep]), val[keep]

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Scores for a pseudo-user; default: weighted sum of item-similarity rows."""
        return weights @ self._similarity_rows(item_rows)

    def _fallback_scores(self) -> np.ndarray:
        """Scores for unknown users: log-popularity, so the head of the catalog comes first."""
        if self.item_popularity is None:
            raise NotFittedError(f"{self.name} is not fitted")
        return np.log1p(self.item_popularity).astype(np.float32)

    # ----------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write params, id maps, training matrix and learned arrays into ``directory``.

        Parameters
        ----------
        directory : str or pathlib.Path
            Created if missing; existing files of the same names are overwritten.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        matrix = self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _PARAMS_FILE).write_text(
            json.dumps({"model": self.name, "params": self.params}, indent=2, default=_json_default)
        )
        self._require_users().save(directory / "users.json")
        self._require_items().save(directory / "items.json")
        arrays = {f"state_{key}": value for key, value in self._state().items()}
        arrays.update(
            ui_data=matrix.data,
            ui_indices=matrix.indices,
            ui_indptr=matrix.indptr,
            ui_shape=np.asarray(matrix.shape),
            popularity=self.item_popularity,
        )
        with open(directory / _ARRAYS_FILE, "wb") as handle:
            np.savez(handle, **arrays)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load a model written by :meth:`save`; on the base class, the stored name decides.

        Parameters
        ----------
        directory : str or pathlib.Path
            Directory written by :meth:`save`.

        Returns
        -------
        Recommender
        """
        directory = Path(directory)
        spec = json.loads((directory / _PARAMS_FILE).read_text())
        target = cls
        if not cls.name or cls.name != spec["model"]:
            if spec["model"] not in MODEL_CLASSES:
                raise UnknownModelError(spec["model"], list(MODEL_CLASSES))
            target = MODEL_CLASSES[spec["model"]]
        model = target(**spec["params"])
        model.users = IdMap.load(directory / "users.json")
        model.items = IdMap.load(directory / "items.json")
        with np.load(directory / _ARRAYS_FILE, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        shape = tuple(int(x) for x in arrays["ui_shape"])
        model.user_items = sp.csr_matrix(
            (arrays["ui_data"], arrays["ui_indices"], arrays["ui_indptr"]), shape=shape
        )
        model.item_popularity = arrays["popularity"]
        model._set_state({k[6:]: v for k, v in arrays.items() if k.startswith("state_")})
        return model

    # ----------------------------------------------------------------- helpers
    def _item_mask(self, item_ids: Iterable | None) -> np.ndarray | None:
        if item_ids is None:
            return None
        rows = self._require_items().to_index(item_ids)
        mask = np.zeros(self.n_items, dtype=bool)
        mask[rows[rows >= 0]] = True
        return mask

    def _require_fitted(self) -> sp.csr_matrix:
        if self.user_items is None:
            raise NotFittedError(f"{self.name} is not fitted; call fit() or load()")
        return self.user_items

    def _require_users(self) -> IdMap:
        self._require_fitted()
        assert self.users is not None
        return self.users

    def _require_items(self) -> IdMap:
        self._require_fitted()
        assert self.items is not None
        return self.items


def _json_default(value: object) -> object:
    """Make numpy scalars JSON-serialisable in saved params."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def cosine_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``vectors[rows]`` against all ``vectors`` (float32)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    norms[norms == 0] = 1.0
    sims = vectors[rows] @ vectors.T
    return (sims / norms[rows][:, None] / norms[None, :]).astype(np.float32)
