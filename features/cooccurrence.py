"""Sparse item × item co-occurrence counts (co-view, co-purchase).

Co-occurrence is counted per user ("the same shopper touched both"), from a binarised user ×
item matrix, so one user viewing two products a hundred times counts once. The diagonal is
removed because "bought with itself" is never a useful suggestion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.id_map import IdMap
from features.interactions import as_frame


def cooccurrence_matrix(user_items: sp.spmatrix, min_count: int = 1) -> sp.csr_matrix:
    """Item × item counts of users who interacted with both items.

    Parameters
    ----------
    user_items : scipy.sparse matrix
        Users in rows, items in columns; any non-zero counts as an interaction.
    min_count : int
        Drop pairs seen for fewer users (noise and memory).

    Returns
    -------
    scipy.sparse.csr_matrix
        Symmetric float32 counts with an empty diagonal.
    """
    binary = sp.csr_matrix(user_items, copy=True)
    binary.eliminate_zeros()
    binary.data = np.ones_like(binary.data, dtype=np.float32)
    counts = (binary.T @ binary).tocsr()
    counts.setdiag(0)
    if min_count > 1:
        counts.data[counts.data < min_count] = 0
    counts.eliminate_zeros()
    return counts.astype(np.float32)


def event_cooccurrence(
    events: pd.DataFrame | object,
    event_types: list[str],
    items: IdMap | None = None,
    min_count: int = 1,
) -> tuple[sp.csr_matrix, IdMap]:
    """Co-occurrence of products among events of the given types (e.g. co-view, co-purchase).

    Parameters
    ----------
    events : pandas.DataFrame or pyarrow.Table
        Columns ``user_id``, ``product_id``, ``event_type``.
    event_types : list of str
        E.g. ``["product_view"]`` for co-view or ``["purchase"]`` for co-purchase.
    items : IdMap, optional
        Item map to align with (for instance a model's); otherwise built from the events.
    min_count : int
        Minimum number of shared users.

    Returns
    -------
    (scipy.sparse.csr_matrix, IdMap)
        The counts and the item map giving their rows/columns.
    """
    frame = as_frame(events)
    frame = frame[frame["event_type"].isin(event_types)]
    items = items or IdMap.from_values(frame["product_id"])
    users = IdMap.from_values(frame["user_id"])
    rows = users.to_index(frame["user_id"])
    cols = items.to_index(frame["product_id"])
    keep = cols >= 0
    data = np.ones(int(keep.sum()), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(len(users), len(items)))
    return cooccurrence_matrix(matrix, min_count=min_count), items
