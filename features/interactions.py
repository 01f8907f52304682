"""User × product interaction matrices built from raw shop events.

Events differ in how much intent they show (a purchase says more than a view) and in how
fresh they are (last week's views say more than last year's), so each event contributes a
weight ``type_weight * 0.5 ** (age / half_life)``. Repeated events of the same kind on the
same pair are de-duplicated first, because a user refreshing a page is not ten times as
interested; different kinds of event on one pair still add up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from features.id_map import IdMap

if TYPE_CHECKING:
    import pandas as pd

#: Default intent weight per event type; unknown types get ``DEFAULT_UNKNOWN_WEIGHT``.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "product_view": 1.0,
    "search_click": 2.0,
    "rec_click": 2.0,
    "add_to_cart": 4.0,
    # Saving for later says more than a view and less than a cart add; a prior, not fitted
    # (no dev data has wishlist events yet), so re-tune once the demo data carries them.
    "wishlist_add": 3.0,
    "purchase": 8.0,
}
DEFAULT_UNKNOWN_WEIGHT = 0.0
PURCHASE_EVENT = "purchase"

_SECONDS_PER_DAY = 86_400.0


@dataclass
class Interactions:
    """A weighted user × item matrix with the id maps that give its rows and columns meaning.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        Float32 confidence weights, users in rows, items in columns.
    users, items : IdMap
        External ids for rows and columns.
    timestamps : scipy.sparse.csr_matrix or None
        Latest event time (seconds since epoch) per non-zero, same sparsity as ``matrix``;
        lets trending models and time-aware code work without the raw events.
    purchases : scipy.sparse.csr_matrix or None
        Purchase counts per pair, used by bought-together models.
    """

    matrix: sp.csr_matrix
    users: IdMap
    items: IdMap
    timestamps: sp.csr_matrix | None = None
    purchases: sp.csr_matrix | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return self.matrix.shape

    def save(self, directory: str | Path) -> None:
        """Save matrix and id maps (NPZ + JSON) so a model can be rebuilt or audited later."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sp.save_npz(directory / "interactions.npz", self.matrix)
        self.users.save(directory / "users.json")
        self.items.save(directory / "items.json")

    @classmethod
    def load(cls, directory: str | Path) -> Interactions:
        """Load what :meth:`save` wrote."""
        directory = Path(directory)
        matrix = sp.load_npz(directory / "interactions.npz").tocsr()
        return cls(
            matrix, IdMap.load(directory / "users.json"), IdMap.load(directory / "items.json")
        )


def decay_factor(age_seconds: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Exponential decay ``0.5 ** (age / half_life)``; ages in the future count as fresh.

    Parameters
    ----------
    age_seconds : numpy.ndarray
        Event ages in seconds relative to the reference time.
    half_life_days : float or None
        Age at which an event counts half. ``None`` disables decay.

    Returns
    -------
    numpy.ndarray
        Multipliers in (0, 1].
    """
    if half_life_days is None:
        return np.ones_like(age_seconds, dtype=np.float64)
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    age_days = np.clip(np.asarray(age_seconds, dtype=np.float64), 0, None) / _SECONDS_PER_DAY
    return np.power(0.5, age_days / half_life_days)


def to_epoch_seconds(values: pd.Series) -> np.ndarray:
    """Convert datetimes or numbers (already epoch seconds) to float epoch seconds."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    stamps = pd.to_datetime(values, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def as_frame(events: pd.DataFrame | object) -> pd.DataFrame:
    """Accept pandas or pyarrow tables so pipelines need not convert."""
    import pandas as pd

    if isinstance(events, pd.DataFrame):
        return events
    to_pandas = getattr(events, "to_pandas", None)
    if to_pandas is None:
        raise TypeError("events must be a pandas DataFrame or a pyarrow Table")
    return to_pandas()


def build_interactions(
    events: pd.DataFrame | object,
    weights: Mapping[str, float] | None = None,
    half_life_days: float | None = 30.0,
    now: float | pd.Timestamp | None = None,
    users: IdMap | None = None,
    items: IdMap | None = None,
) -> Interactions:
    """Build a decayed, type-weighted interaction matrix from shop events.

    Parameters
    ----------
    events : pandas.DataFrame or pyarrow.Table
        Columns ``user_id``, ``product_id``, ``event_type``, ``ts`` (datetime or epoch
        seconds).
    weights : mapping, optional
        Intent weight per event type; defaults to :data:`DEFAULT_EVENT_WEIGHTS`. Event types
        with weight 0 are dropped.
    half_life_days : float or None
        Half-life of the exponential time decay; ``None`` disables decay.
    now : float or pandas.Timestamp, optional
        Reference time for ages; defaults to the latest event, which keeps builds on historic
        data reproducible.
    users, items : IdMap, optional
        Existing maps to reuse (e.g. those saved beside a model). Events with ids outside
        a given map are dropped; without a map one is built from the events.

    Returns
    -------
    Interactions
        Matrix, id maps, latest timestamps and purchase counts.
    """
    frame = as_frame(events)
    missing = {"user_id", "product_id", "event_type", "ts"} - set(frame.columns)
    if missing:
        raise ValueError(f"events lack columns: {sorted(missing)}")
    weights = dict(DEFAULT_EVENT_WEIGHTS if weights is None else weights)
    frame = frame[["user_id", "product_id", "event_type", "ts"]].copy()
    frame["ts"] = to_epoch_seconds(frame["ts"])
    frame["w"] = frame["event_type"].map(weights).fillna(DEFAULT_UNKNOWN_WEIGHT).astype(float)
    frame = frame[frame["w"] > 0]

    users = users or IdMap.from_values(frame["user_id"])
    items = items or IdMap.from_values(frame["product_id"])
    frame["row"] = users.to_index(frame["user_id"])
    frame["col"] = items.to_index(frame["product_id"])
    frame = frame[(frame["row"] >= 0) & (frame["col"] >= 0)]

    # De-duplicate: one contribution per (user, item, type), from its most recent occurrence.
    latest = frame.groupby(["row", "col", "event_type"], sort=False, observed=True).agg(
        ts=("ts", "max"), w=("w", "first"), n=("ts", "size")
    )
    latest = latest.reset_index()
    if now is None:
        reference = float(frame["ts"].max()) if len(frame) else 0.0
    elif hasattr(now, "timestamp"):  # a pandas Timestamp (or any datetime)
        reference = now.timestamp()
    else:
        reference = float(now)
    latest["value"] = latest["w"] * decay_factor(
        reference - latest["ts"].to_numpy(), half_life_days
    )

    shape = (len(users), len(items))
    rows, cols = latest["row"].to_numpy(), latest["col"].to_numpy()
    matrix = sp.csr_matrix((latest["value"].to_numpy(np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    stamps = latest.groupby(["row", "col"], sort=False)["ts"].max().reset_index()
    timestamps = sp.csr_matrix(
        (stamps["ts"].to_numpy(np.float64), (stamps["row"], stamps["col"])), shape=shape
    )
    bought = latest[latest["event_type"] == PURCHASE_EVENT]
    purchases = sp.csr_matrix(
        (bought["n"].to_numpy(np.float32), (bought["row"], bought["col"])), shape=shape
    )
    return Interactions(
        matrix.astype(np.float32),
        users,
        items,
        timestamps=timestamps,
        purchases=purchases,
        meta={"reference_ts": reference, "half_life_days": half_life_days},
    )


def interactions_from_triples(
    users: np.ndarray | pd.Series,
    items: np.ndarray | pd.Series,
    values: np.ndarray | pd.Series | None = None,
    timestamps: np.ndarray | pd.Series | None = None,
    user_map: IdMap | None = None,
    item_map: IdMap | None = None,
) -> Interactions:
    """Build a matrix from (user, item, value) triples such as explicit ratings.

    Used by offline evaluation on public data sets, where there is no event type: the
    rating itself is the confidence. Duplicate pairs keep their latest value.

    Parameters
    ----------
    users, items : array-like
        External ids, one per interaction.
    values : array-like, optional
        Confidence per interaction; defaults to 1.
    timestamps : array-like, optional
        Epoch seconds per interaction, kept for time-aware models.
    user_map, item_map : IdMap, optional
        Maps to reuse; pairs outside them are dropped.

    Returns
    -------
    Interactions
    """
    import pandas as pd

    frame = pd.DataFrame({"u": np.asarray(users), "i": np.asarray(items)})
    frame["v"] = 1.0 if values is None else np.asarray(values, dtype=np.float64)
    frame["t"] = 0.0 if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    user_map = user_map or IdMap.from_values(frame["u"])
    item_map = item_map or IdMap.from_values(frame["i"])
    frame["r"] = user_map.to_index(frame["u"])
    frame["c"] = item_map.to_index(frame["i"])
    frame = frame[(frame["r"] >= 0) & (frame["c"] >= 0)]
    frame = frame.sort_values("t", kind="stable").drop_duplicates(["r", "c"], keep="last")
    shape = (len(user_map), len(item_map))
    rc = (frame["r"].to_numpy(), frame["c"].to_numpy())
    matrix = sp.csr_matrix((frame["v"].to_numpy(np.float32), rc), shape=shape)
    stamps = sp.csr_matrix((frame["t"].to_numpy(np.float64), rc), shape=shape)
    return Interactions(matrix, user_map, item_map, timestamps=stamps)
