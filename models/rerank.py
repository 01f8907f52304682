"""A learned reranker over several candidate generators (issue 21).

A blend adds standardised scores with fixed weights; a reranker instead *learns* how to trust
each generator per (user, item): EASE's score means more for a heavy user, popularity more
for a light one, an item that three generators agree on more than one found by one alone.

How it is trained, inside :meth:`RerankRecommender.fit` and from the training matrix only:

1. each user with at least two training items hands a seeded ``holdout`` share of them
   (at least one) to a *second* validation part; the rest is the reranker's inner part;
2. every generator is fitted on the inner part; for a sample of users with held-out items,
   the candidates are the union of each generator's top-``candidates`` unseen items;
3. each candidate gets features (per generator: standardised score and rank; item
   log-popularity; user log-activity; in how many generators' lists it is) and the label
   "held out for this user"; LightGBM's lambdarank learns the ranking, one group per user;
4. the generators are refitted on the whole training matrix for scoring.

In ``storeloop recs evaluate`` the model's own validation score comes from fitting all of
this on inner-train and scoring the runner's validation split, so the reranker's second split
is carved from the first's inner part: test rows are never seen while learning or choosing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from features.interactions import Interactions
from models.base import MODEL_CLASSES, Recommender
from models.blend import standardise  # also registers every class a generator may name
from models.exceptions import NotFittedError
from models.topk import topk_rows

#: EASE (global linear), ALS (low rank), RP3beta (graph, long tail) and popularity (the head):
#: four generators that make different mistakes, so their union covers more held-out items.
DEFAULT_GENERATORS = ("ease", "als", "rp3beta", "popular")
_BATCH_ROWS = 512


def _rank_features(
    scores: list[np.ndarray], seen: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates (row, column) and their feature matrix from per-generator dense scores.

    Parameters
    ----------
    scores : list of numpy.ndarray
        One (B, n_items) float32 score matrix per generator.
    seen : numpy.ndarray
        Boolean (B, n_items): items never to offer as candidates.
    depth : int
        Top items taken from each generator.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Candidate rows, candidate columns (row-major order) and the per-generator
        features, shape (n_candidates, 2 * n_generators + 1): z-score, rank, list count.
    """
    n_rows, n_items = seen.shape
    depth = max(1, min(depth, n_items))
    standard, ranks = [], []
    member = np.zeros((n_rows, n_items), dtype=np.int8)
    for part in scores:
        z = standardise(np.nan_to_num(part, nan=0.0, posinf=0.0, neginf=0.0))
        masked = np.where(seen, -np.inf, z)
        idx, val = topk_rows(masked, depth)
        rank = np.full((n_rows, n_items), depth + 1, dtype=np.float32)
        finite = np.isfinite(val)
        rows = np.repeat(np.arange(n_rows), depth).reshape(n_rows, depth)
        rank[rows[finite], idx[finite]] = np.broadcast_to(np.arange(1, depth + 1), idx.shape)[
            finite
        ]
        member[rows[finite], idx[finite]] += 1
        standard.append(z)
        ranks.append(rank)
    cand_rows, cand_cols = np.nonzero(member)
    columns = []
    for z, rank in zip(standard, ranks, strict=True):
        columns += [z[cand_rows, cand_cols], rank[cand_rows, cand_cols]]
    columns.append(member[cand_rows, cand_cols].astype(np.float32))
    return cand_rows, cand_cols, np.column_stack(columns).astype(np.float32)


def holdout_split(
    matrix: sp.csr_matrix, share: float, seed: int
) -> tuple[sp.csr_matrix, list[np.ndarray]]:
    """Per-user random holdout: (inner matrix, held-out columns per row).

    Users with fewer than two items keep everything (nothing to learn from them).
    """
    rng = np.random.default_rng(seed)
    matrix = matrix.tocsr()
    keep = np.ones(matrix.nnz, dtype=bool)
    held: list[np.ndarray] = []
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        n = hi - lo
        if n < 2:
            held.append(np.empty(0, dtype=np.int64))
            continue
        take = min(n - 1, max(1, int(round(share * n))))
        chosen = lo + rng.choice(n, take, replace=False)
        keep[chosen] = False
        held.append(matrix.indices[chosen].astype(np.int64))
    coo = matrix.tocoo()
    inner = sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape, dtype=np.float32
    )
    return inner, held


class RerankRecommender(Recommender):
    """LightGBM lambdarank over the union of several generators' top candidates.

    Parameters
    ----------
    generators : list of str
        Candidate generators (no nested rerankers or blends).
    params : dict
        Per-generator hyperparameters, by model name.
    candidates : int
        Top items taken from each generator.
    holdout : float
        Share of each user's training items held out to learn the reranker.
    max_train_users : int
        Users sampled for the reranker's training groups (bounds fit time).
    rounds, learning_rate, num_leaves, min_data_in_leaf
        LightGBM boosting settings.
    seed : int
        Seed of the holdout, the user sample and LightGBM.
    """

    name = "rerank"
    components: list[Recommender] | None = None
    booster: Any = None

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {
            "generators": list(DEFAULT_GENERATORS),
            "params": {},
            "candidates": 100,
            "holdout": 0.2,
            "max_train_users": 2000,
            "rounds": 150,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 50,
            "seed": 0,
        }

    # ----------------------------------------------------------------- pieces
    def _generators(self) -> list[str]:
        names = list(self.params["generators"])
        if not names:
            raise ValueError("rerank: at least one generator is needed")
        if {self.name, "blend"} & set(names):
            raise ValueError("rerank: generators cannot be rerankers or blends")
        return names

    def _build(self, name: str) -> Recommender:
        return MODEL_CLASSES[name](**dict(self.params["params"]).get(name, {}))

    def _fit_components(self, interactions: Interactions) -> list[Recommender]:
        return [self._build(name).fit(interactions) for name in self._generators()]

    def _parts(self) -> list[Recommender]:
        if self.components is None or self.booster is None:
            raise NotFittedError("rerank is not fitted")
        return self.components

    def _features(
        self,
        scores: list[np.ndarray],
        seen: np.ndarray,
        activity: np.ndarray,
        popularity: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols, per_generator = _rank_features(scores, seen, int(self.params["candidates"]))
        extra = np.column_stack([np.log1p(popularity[cols]), np.log1p(activity[rows])]).astype(
            np.float32
        )
        return rows, cols, np.hstack([per_generator, extra])

    def _monotone(self) -> list[int]:
        """+1 for each score, -1 for each rank, +1 for the list count; free for the rest."""
        return [1, -1] * len(self._generators()) + [1, 0, 0]

    # ----------------------------------------------------------------- training
    def _fit(self, interactions: Interactions) -> None:
        import lightgbm as lgb

        matrix = self._require_fitted()
        seed = int(self.params["seed"])
        inner_matrix, held = holdout_split(matrix, float(self.params["holdout"]), seed)
        inner = Interactions(inner_matrix, interactions.users, interactions.items)
        inner_parts = self._fit_components(inner)
        users = np.flatnonzero([len(h) > 0 for h in held])
        limit = int(self.params["max_train_users"])
        if len(users) > limit:
            users = np.sort(np.random.default_rng(seed).choice(users, limit, replace=False))
        popularity = np.diff(inner_matrix.tocsc().indptr).astype(np.float32)
        activity_all = np.diff(inner_matrix.indptr).astype(np.float32)
        features, labels, groups = [], [], []
        for start in range(0, len(users), _BATCH_ROWS):
            batch = users[start : start + _BATCH_ROWS]
            scores = [part._score_users(batch) for part in inner_parts]
            seen = inner_matrix[batch].toarray() != 0
            rows, cols, x = self._features(scores, seen, activity_all[batch], popularity)
            truth = np.zeros(seen.shape, dtype=bool)
            for i, user in enumerate(batch):
                truth[i, held[user]] = True
            y = truth[rows, cols].astype(np.int32)
            counts = np.bincount(rows, minlength=len(batch))
            positives = np.bincount(rows, weights=y, minlength=len(batch))
            kept = (counts > 0) & (positives > 0)
            useful = np.repeat(kept, counts)
            features.append(x[useful])
            labels.append(y[useful])
            groups.append(counts[kept])
        x_all = np.vstack(features) if features else np.empty((0, 0), np.float32)
        if not len(x_all):
            raise ValueError("rerank: no user has a held-out item among the candidates")
        data = lgb.Dataset(x_all, np.concatenate(labels), group=np.concatenate(groups))
        options = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": float(self.params["learning_rate"]),
            "num_leaves": int(self.params["num_leaves"]),
            "min_data_in_leaf": int(self.params["min_data_in_leaf"]),
            # A better score or rank from any generator, or one more list agreeing, never
            # lowers an item: the trees learn how much to trust each signal, not noise such
            # as "rank 21 beats rank 3" that breaks on users unlike the training sample.
            "monotone_constraints": self._monotone(),
            "seed": seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        self.booster = lgb.train(options, data, num_boost_round=int(self.params["rounds"]))
        self.components = self._fit_components(interactions)

    # ----------------------------------------------------------------- scoring
    def _rerank(
        self, scores: list[np.ndarray], seen: np.ndarray, activity: np.ndarray
    ) -> np.ndarray:
        """Dense scores: candidates by the learned model, the rest below them in EASE order."""
        assert self.item_popularity is not None
        rows, cols, x = self._features(scores, seen, activity, self.item_popularity)
        predicted = self.booster.predict(x, num_threads=1).astype(np.float32)
        out = standardise(np.nan_to_num(scores[0], nan=0.0, posinf=0.0, neginf=0.0))
        floor = np.full(len(out), np.inf, dtype=np.float32)
        np.minimum.at(floor, rows, predicted)
        floor[~np.isfinite(floor)] = 0.0
        is_candidate = np.zeros(out.shape, dtype=bool)
        is_candidate[rows, cols] = True
        rest_max = np.where(is_candidate, -np.inf, out).max(axis=1)
        rest_max[~np.isfinite(rest_max)] = 0.0
        out += (floor - 1.0 - rest_max)[:, None]
        out[rows, cols] = predicted
        return out

    def _score_users(self, rows: np.ndarray) -> np.ndarray:
        parts = self._parts()
        matrix = self._require_fitted()
        scores = [part._score_users(rows) for part in parts]
        seen = matrix[rows].toarray() != 0
        activity = np.diff(matrix.indptr)[rows].astype(np.float32)
        return self._rerank(scores, seen, activity)

    def _fold_in_scores(self, item_rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A session's scores from the first generator alone.

        A fresh session has a handful of items, far fewer than the users the reranker learned
        from (its activity and score distributions are outside the training range), so the
        learned model is not trusted there; on the toy set it ranked other blocks' popular
        items first.
        """
        return self._parts()[0]._fold_in_scores(item_rows, weights)

    def _similarity_rows(self, item_rows: np.ndarray) -> np.ndarray:
        """Item-to-item similarity of the first generator (the reranker learns users)."""
        return self._parts()[0]._similarity_rows(item_rows)

    # ----------------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        state = {}
        for i, model in enumerate(self._parts()):
            state.update({f"{i}_{key}": value for key, value in model._state().items()})
        text = self.booster.model_to_string()
        state["booster"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        import lightgbm as lgb

        self.components = []
        for i, name in enumerate(self._generators()):
            model = self._build(name)
            model.users, model.items = self.users, self.items
            model.user_items, model.item_popularity = self.user_items, self.item_popularity
            prefix = f"{i}_"
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            model._set_state(own)
            self.components.append(model)
        text = arrays["booster"].tobytes().decode("utf-8")
        self.booster = lgb.Booster(model_str=text)
