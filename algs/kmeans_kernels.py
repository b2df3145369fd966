"""numba kernels of k-means (Lloyd's algorithm) over CSR rows, and the k-means++ seeding.

Rows are CSR (``indptr``, ``indices``, ``data``) as the libsvm parser returns
them; centres are dense. Squared distances use the expansion
``||x||² - 2 x·c + ||c||²`` over the non-zeros of ``x``, as scikit-learn does
for its assignment step. Pure numpy and numba (no MPI): tests and benchmarks
import this module.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def assign_and_sum(indptr, indices, data, centers_t, cnorm, labels, sums):
    """Assign every row to its nearest centre and add it to that centre's sums; returns (changed, inertia).

    ``centers_t`` is ``d × k`` (the centres transposed), ``cnorm[j] = ||c_j||²``.
    ``labels`` holds the previous labels (-1 for none) and is overwritten;
    ``changed`` counts the rows whose label changed. ``sums`` (``k × (d+1)``)
    gets ``x`` added to ``sums[label, :d]`` and 1 to ``sums[label, d]``.
    ``inertia`` is the sum of squared distances to the assigned centres (by the expansion).
    """
    n = indptr.shape[0] - 1
    k = cnorm.shape[0]
    d = centers_t.shape[0]
    dots = np.empty(k)
    changed = 0
    inertia = 0.0
    for i in range(n):
        for j in range(k):
            dots[j] = 0.0
        xx = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            f = indices[p]
            v = data[p]
            xx += v * v
            for j in range(k):
                dots[j] += v * centers_t[f, j]
        best = 0
        best_v = cnorm[0] - 2.0 * dots[0]
        for j in range(1, k):
            v = cnorm[j] - 2.0 * dots[j]
            if v < best_v:
                best_v = v
                best = j
        dist = xx + best_v
        inertia += dist if dist > 0.0 else 0.0
        if labels[i] != best:
            changed += 1
            labels[i] = best
        for p in range(indptr[i], indptr[i + 1]):
            sums[best, indices[p]] += data[p]
        sums[best, d] += 1.0
    return changed, inertia


@njit(cache=True, nogil=True)
def inertia_of(indptr, indices, data, centers, labels):
    """Sum over rows of ``||x_i - centers[labels[i]]||²``, element by element (no expansion)."""
    n = indptr.shape[0] - 1
    d = centers.shape[1]
    total = 0.0
    for i in range(n):
        c = labels[i]
        s = 0.0
        for f in range(d):
            s += centers[c, f] * centers[c, f]
        for p in range(indptr[i], indptr[i + 1]):
            f = indices[p]
            x = data[p]
            s += (x - centers[c, f]) * (x - centers[c, f]) - centers[c, f] * centers[c, f]
        total += s if s > 0.0 else 0.0
    return total


@njit(cache=True, nogil=True)
def min_sq_dist(indptr, indices, data, center, cnorm, best):
    """``best[i] = min(best[i], ||x_i - center||²)`` for every row (``cnorm = ||center||²``)."""
    n = indptr.shape[0] - 1
    for i in range(n):
        s = cnorm
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p]
            s += x * x - 2.0 * x * center[indices[p]]
        if s < 0.0:
            s = 0.0
        if s < best[i]:
            best[i] = s


def row_dense(indptr, indices, data, i: int, d: int) -> np.ndarray:
    """Row ``i`` of a CSR matrix as a dense length-``d`` float64 vector."""
    out = np.zeros(d)
    lo, hi = indptr[i], indptr[i + 1]
    out[indices[lo:hi]] = data[lo:hi]
    return out


def kmeans_plus_plus(indptr, indices, data, d: int, k: int, seed: int) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii): the first centre uniformly, each next one with
    probability proportional to the squared distance to the nearest centre chosen so far.

    ``numpy.random.default_rng(seed)`` makes the draws; returns ``k × d``.
    If every row coincides with a chosen centre, the next centre is drawn uniformly.
    """
    n = indptr.shape[0] - 1
    if n < k:
        raise ValueError(f"k-means++ needs at least k={k} rows, the input has {n}")
    rng = np.random.default_rng(seed)
    centers = np.empty((k, d))
    best = np.full(n, np.inf)
    pick = int(rng.integers(n))
    for j in range(k):
        centers[j] = row_dense(indptr, indices, data, pick, d)
        min_sq_dist(indptr, indices, data, centers[j], float(centers[j] @ centers[j]), best)
        if j == k - 1:
            break
        cum = np.cumsum(best)
        total = cum[-1]
        if total > 0.0:
            pick = int(min(np.searchsorted(cum, rng.random() * total, side="right"), n - 1))
        else:
            pick = int(rng.integers(n))
    return centers
