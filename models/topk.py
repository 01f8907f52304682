"""Exact top-k selection over score rows.

``argpartition`` is O(n) per row and only the k winners get sorted, which on a million-item
catalog is the difference between a sort (~100 ms) and a partition (a few ms).
"""

from __future__ import annotations

import numpy as np


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, best first.

    Entries equal to ``-inf`` are treated as excluded: they are returned only when a row has
    fewer than ``k`` finite scores, and callers drop them with :func:`drop_excluded`.

    Parameters
    ----------
    scores : numpy.ndarray
        Shape (n_rows, n_items) or (n_items,).
    k : int
        Number of entries to keep; clipped to the number of items.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Indices (int64) and scores, shape (n_rows, k) — or (k,) for 1-D input.
    """
    one_d = scores.ndim == 1
    matrix = scores[None, :] if one_d else scores
    n_items = matrix.shape[1]
    k = max(0, min(int(k), n_items))
    if k == 0:
        empty_idx = np.empty((matrix.shape[0], 0), dtype=np.int64)
        empty_val = np.empty((matrix.shape[0], 0), dtype=matrix.dtype)
        return (empty_idx[0], empty_val[0]) if one_d else (empty_idx, empty_val)
    if k < n_items:
        # Partition for the k largest in place of negating (saves a full-size copy).
        part = np.argpartition(matrix, n_items - k, axis=1)[:, n_items - k :]
    else:
        part = np.broadcast_to(np.arange(n_items), matrix.shape).copy()
    values = np.take_along_axis(matrix, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(values, order, axis=1)
    return (idx[0], vals[0]) if one_d else (idx, vals)


def drop_excluded(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove entries whose score is ``-inf`` (excluded items) from one row."""
    keep = np.isfinite(values)
    return indices[keep], values[keep]
