"""Exact top-k selection over score rows.

``argpartition`` is O(n) per row and only the k winners get sorted, which on a million-item
catalog is the difference between a sort (~100 ms) and a partition (a few ms).

The partition runs on the *negated* scores with ``kth = k - 1``, never on the scores with
``kth = n - k``: numpy 2.4's introselect is about 14× slower on the latter when a row holds
many equal values — exactly what sparse models give (item-to-item and RP3beta score most of
a user's row 0). On Last.fm (512 users × 17,632 items per batch) that was 0.9 s per batch and
124 of the default ``recs evaluate``'s 218 seconds; the negated form takes ~0.06 s either way.
The negation needs a buffer, so rows are processed in chunks of at most ``_CHUNK_CELLS``.

Most rows never reach the partition: the maximum of each block of ``_BLOCK`` entries is one
cheap vectorised pass, and the k-th largest of those block maxima is a *lower bound* on the
row's k-th largest value (the k best block maxima are k distinct entries). Only the entries
at or above that bound are candidates, usually a few times k, so selecting among them costs
a comparison pass and a small sort (about 3× faster than the partition on dense rows). Rows
where the bound admits too many candidates (ties at the bound, rows mostly ``-inf``, NaN)
take the partition instead, so the answer is always exact; ties at the k-th value go to the
lowest item positions either way.
"""

from __future__ import annotations

import numpy as np

#: Cells per negation buffer (16 MiB of float32): bounds the extra memory of one call.
_CHUNK_CELLS = 1 << 22
#: Entries per block of the lower-bound pre-pass, and the candidates a row may keep (per k)
#: before it falls back to the partition.
_BLOCK = 64
_CANDIDATES_PER_K = 32


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
        part = _partition_largest(matrix, k)
    else:
        part = np.broadcast_to(np.arange(n_items), matrix.shape).copy()
    values = np.take_along_axis(matrix, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(values, order, axis=1)
    return (idx[0], vals[0]) if one_d else (idx, vals)


def _partition_largest(matrix: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest entries of each row (unordered), shape (rows, k)."""
    n_rows, n_items = matrix.shape
    part = np.empty((n_rows, k), dtype=np.intp)
    step = max(1, _CHUNK_CELLS // n_items)
    for start in range(0, n_rows, step):
        chunk = matrix[start : start + step]
        if chunk.dtype.kind == "u":
            chunk = chunk.astype(np.int64)
        part[start : start + step] = _chunk_largest(chunk, k)
    return part


def _chunk_largest(chunk: np.ndarray, k: int) -> np.ndarray:
    """:func:`_partition_largest` for one chunk: block-maxima bound, partition as fallback.

    Ties at the k-th value go to the lowest item positions on both paths, so the answer does
    not depend on which path a row took (nor on numpy's partition order).
    """
    n_rows, n_items = chunk.shape
    out = np.empty((n_rows, k), dtype=np.intp)
    light = np.zeros(n_rows, dtype=bool)
    blocks = n_items // _BLOCK
    if chunk.dtype.kind == "f" and blocks >= 2 * k:
        head = chunk[:, : blocks * _BLOCK].reshape(n_rows, blocks, _BLOCK).max(axis=2)
        bound = -np.partition(-head, k - 1, axis=1)[:, k - 1]
        mask = chunk >= bound[:, None]
        counts = mask.sum(axis=1)
        light = (counts >= k) & (counts <= _CANDIDATES_PER_K * k)
        if light.any():
            rows = np.flatnonzero(light)
            local, cols = np.nonzero(mask[light])
            order = np.lexsort((cols, -chunk[rows[local], cols], local))
            first = np.concatenate(([0], np.cumsum(counts[light])[:-1]))
            out[light] = cols[order][first[:, None] + np.arange(k)]
    if not light.all():
        out[~light] = _exact_largest(chunk[~light], k)
    return out


def _exact_largest(rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest by their exact k-th value: all above it, then the first ties."""
    kth = -np.partition(np.negative(rows), k - 1, axis=1)[:, k - 1]
    above = rows > kth[:, None]
    tied = rows == kth[:, None]
    room = k - above.sum(axis=1)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))
    if not np.all(keep.sum(axis=1) == k):  # NaN scores: no exact k-th value to cut at
        return np.argpartition(np.negative(rows), k - 1, axis=1)[:, :k]
    return np.nonzero(keep)[1].reshape(len(rows), k)


def drop_excluded(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove entries whose score is ``-inf`` (excluded items) from one row."""
    keep = np.isfinite(values)
    return indices[keep], values[keep]
