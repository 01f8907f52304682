"""The linear algebra behind EASE, in three forms that all give the same model family.

EASE needs ``P = (XᵀX + λI)⁻¹`` over the n items. Its cost depends on which side of ``X``
(users × items) is smaller, so there are three solvers:

* **primal** — Cholesky-invert the dense n × n Gram ``XᵀX + λI`` (n³/3 flops). Best when the
  catalog is small next to the user base (a shop: 800 items, many users).
* **dual** — when there are fewer users m than items, Woodbury's identity gives the *exact*
  ``P = (I − Xᵀ (XXᵀ + λI)⁻¹ X) / λ``: only an m × m matrix is inverted, and one
  eigendecomposition ``XXᵀ = V S Vᵀ`` serves every λ (``(XXᵀ + λI)⁻¹ = V (S + λ)⁻¹ Vᵀ``).
  On Last.fm (1,892 users × 17,632 artists) this replaces a 17,632² inverse (~3 minutes) by
  a 1,892² one (about a second).
* **lowrank** — when both sides are large, a rank-r randomized SVD ``X ≈ U S Vᵀ`` gives
  ``P ≈ (I − V S²(S² + λ)⁻¹ Vᵀ) / λ``; memory and scoring are O(r · n), never n².

The dual and low-rank forms share one shape, ``λP = I − Aᵀ M A`` (A is ``X`` or ``Vᵀ``), so
scoring never builds the n × n matrix: with ``c = x Aᵀ M A`` and ``d = diag(λP)``, EASE's
``x B = x − (x − c) / d`` (``B = I − P diag(P)⁻¹``, whose diagonal is zero).

Tuning refits the same training matrix for every λ, so the λ-free part of each solver (the
Gram matrix, the eigendecomposition, the SVD) is cached by the matrix's content fingerprint:
four entries (inner-train and train, each binary and log-weighted), and never more than
``_CACHE_BYTES`` besides the newest entry (a 20,000-item Gram alone is 3.2 GB).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from models.exceptions import ModelFitError

SOLVERS = ("auto", "primal", "dual", "lowrank")
_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_BYTES = 1 << 30


def choose_solver(n_users: int, n_items: int, max_dense: int) -> str:
    """``auto``'s choice: invert the smaller side; low-rank when both exceed ``max_dense``."""
    if min(n_users, n_items) > max_dense:
        return "lowrank"
    return "dual" if n_users < n_items else "primal"


def fingerprint(matrix: sp.csr_matrix) -> str:
    """Content hash of a sparse matrix (shape, pattern and values)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(matrix.shape, dtype=np.int64).tobytes())
    for array in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _nbytes(value: Any) -> int:
    """Bytes held by an array or a tuple of arrays (0 for anything else)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def cached(key: tuple, compute: Callable[[], Any]) -> Any:
    """Return the cached value for ``key`` or compute and remember it.

    Least recently used entries go first, past ``_CACHE_SIZE`` entries or ``_CACHE_BYTES``
    (the newest entry always stays).
    """
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = compute()
    _CACHE[key] = value
    while len(_CACHE) > 1 and (
        len(_CACHE) > _CACHE_SIZE or sum(_nbytes(v) for v in _CACHE.values()) > _CACHE_BYTES
    ):
        _CACHE.popitem(last=False)
    return value


def primal_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """Dense ``B`` (float32, zero diagonal) by Cholesky inversion of the cached Gram."""
    gram = cached(("gram", fingerprint(x)), lambda: (x.T @ x).toarray().astype(np.float64))
    a = gram.copy()
    a[np.diag_indices_from(a)] += l2
    factor, info = sla.lapack.dpotrf(a, lower=False, overwrite_a=True)
    if info != 0:
        raise ModelFitError(f"ease: Gram matrix is not positive definite (potrf info {info})")
    p, info = sla.lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelFitError(f"ease: Gram inversion failed (potri info {info})")
    p = np.triu(p) + np.triu(p, 1).T  # potri fills one triangle only
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def dual_factors(x: sp.csr_matrix, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """``M = (XXᵀ + λI)⁻¹`` and ``d = diag(λP)`` from one cached eigendecomposition."""

    def decompose() -> tuple[np.ndarray, np.ndarray]:
        kernel = (x @ x.T).toarray().astype(np.float64)
        values, vectors = np.linalg.eigh(kernel)
        return np.clip(values, 0.0, None), vectors

    values, vectors = cached(("eigh", fingerprint(x)), decompose)
    m = (vectors / (values + l2)) @ vectors.T
    mx = np.asarray((x.T @ m).T)  # M X, dense m × n
    d = 1.0 - np.asarray(x.multiply(mx).sum(axis=0)).ravel()
    return m.astype(np.float32), _safe_diag(d)


def lowrank_factors(
    x: sp.csr_matrix, l2: float, rank: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A = Vᵀ`` (r × n), ``M = S²(S² + λ)⁻¹`` (diagonal, r × r) and ``d = diag(λP)``."""
    rank = max(1, min(int(rank), min(x.shape) - 1)) if min(x.shape) > 1 else 1
    key = ("svd", fingerprint(x), rank, seed)
    singular, vt = cached(key, lambda: randomized_svd(x, rank, seed=seed))
    shrink = singular**2 / (singular**2 + l2)
    d = 1.0 - (vt**2 * shrink[:, None]).sum(axis=0)
    return vt.astype(np.float32), np.diag(shrink).astype(np.float32), _safe_diag(d)


def randomized_svd(
    x: sp.csr_matrix, rank: int, oversample: int = 10, n_iter: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``rank`` singular values and right singular vectors (Halko et al. 2011).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Singular values (r,) and ``Vᵀ`` (r × n_items).
    """
    rng = np.random.default_rng(seed)
    width = min(rank + oversample, min(x.shape))
    q = np.asarray(x @ rng.standard_normal((x.shape[1], width)))
    for _ in range(n_iter):  # power iterations sharpen a slowly decaying spectrum
        q, _ = np.linalg.qr(q)
        q, _ = np.linalg.qr(np.asarray(x.T @ q))
        q = np.asarray(x @ q)
    q, _ = np.linalg.qr(q)
    small = np.asarray((x.T @ q).T)  # Qᵀ X, width × n
    _, singular, vt = np.linalg.svd(small, full_matrices=False)
    return singular[:rank], vt[:rank]


def apply_lowrank_form(
    rows: sp.csr_matrix, a: sp.csr_matrix | np.ndarray, m: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """EASE scores ``x B = x − (x − x Aᵀ M A) / d`` for sparse rows ``x``, without B."""
    xa = rows @ a.T
    xa = xa.toarray() if sp.issparse(xa) else np.asarray(xa)
    inner = xa.astype(np.float32) @ m
    c = np.asarray((a.T @ inner.T).T) if sp.issparse(a) else inner @ a
    # x − (x − c)/d = c/d + x(1 − 1/d): one dense pass, the x term only at x's non-zeros
    # (three dense temporaries of users × items cost more than the whole product did).
    out = np.array(c, dtype=np.float32, order="C", copy=True)
    out /= d[None, :]
    coo = sp.coo_matrix(rows)
    np.add.at(out, (coo.row, coo.col), (coo.data * (1.0 - 1.0 / d[coo.col])).astype(np.float32))
    return out


def _safe_diag(d: np.ndarray) -> np.ndarray:
    """``diag(λP)`` lies in (0, 1]; clip round-off so the division stays finite."""
    return np.clip(d, 1e-6, 1.0).astype(np.float32)
