"""numba kernels of a factorization machine (Rendle, 2010) for binary classification.

The model of a row ``x`` (sparse: features ``i`` with values ``x_i``) is::

    z(x) = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j
         = w0 + sum_i w_i x_i + 1/2 sum_f [ (sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2 ]

and ``P(y = 1 | x) = sigmoid(z(x))``. The second form costs ``O(k · nnz)``
instead of ``O(k · nnz^2)``; its gradients are ``dz/dw0 = 1``,
``dz/dw_i = x_i`` and ``dz/dv_if = x_i (s_f - v_if x_i)`` with
``s_f = sum_j v_jf x_j``.

Rows are CSR (``indptr``, ``indices``, ``data``), as
:class:`parasol_hybrid.data.LibSVM` holds them. The training kernel works on
the *pulled* rows of one mini-batch: ``local[p]`` is the position, among the
batch's distinct features, of the feature stored at ``p``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from common import log_loss, logistic_loss

__all__ = ["row_score", "batch_gradient", "predict", "take_rows", "log_loss"]


@njit(inline="always", nogil=True)
def row_score(w, w0, V, cols, shift, data, lo, hi, s):
    """``z(x)`` of the CSR row stored at ``[lo, hi)``, with ``s[f] = sum_i v_if x_i`` left in ``s``.

    The feature stored at ``p`` is row ``cols[p - shift]`` of ``w`` and ``V``; features at or beyond
    ``V.shape[0]`` (unseen in training) are skipped. ``w0`` is the bias.
    """
    nf = V.shape[0]
    k = V.shape[1]
    z = w0
    for f in range(k):
        s[f] = 0.0
    sq = 0.0
    for p in range(lo, hi):
        a = cols[p - shift]
        if a >= nf:
            continue
        x = data[p]
        z += w[a] * x
        for f in range(k):
            vx = V[a, f] * x
            s[f] += vx
            sq += vx * vx
    pair = 0.0
    for f in range(k):
        pair += s[f] * s[f]
    return z + 0.5 * (pair - sq)


@njit(cache=True, nogil=True)
def batch_gradient(w, V, local, data, indptr, labels, lo, hi, reg_w, reg_v, gw, gV):
    """Gradient of the mean log-loss of rows [lo, hi), plus L2, on the pulled ``w`` and ``V``.

    ``w`` holds the batch's features' weights then the bias (last, not
    regularised); ``V`` their factor rows. ``local[p - indptr[lo]]`` is the
    position in ``w``/``V`` of the feature stored at ``p``. Writes ``gw`` (like
    ``w``) and ``gV`` (like ``V``); returns the summed log-loss of the rows.
    """
    m = V.shape[0]
    k = V.shape[1]
    bias = w.shape[0] - 1
    for a in range(w.shape[0]):
        gw[a] = 0.0
    for a in range(m):
        for f in range(k):
            gV[a, f] = 0.0
    s = np.empty(k)
    n = hi - lo
    base = indptr[lo]
    loss = 0.0
    for i in range(lo, hi):
        row_loss, slope = logistic_loss(row_score(w, w[bias], V, local, base, data, indptr[i], indptr[i + 1], s),
                                        labels[i])
        loss += row_loss
        r = slope / n
        gw[bias] += r
        for p in range(indptr[i], indptr[i + 1]):
            a = local[p - base]
            x = data[p]
            gw[a] += r * x
            for f in range(k):
                gV[a, f] += r * x * (s[f] - V[a, f] * x)
    for a in range(m):
        gw[a] += reg_w * w[a]
        for f in range(k):
            gV[a, f] += reg_v * V[a, f]
    return loss


@njit(cache=True, nogil=True)
def predict(w, V, indices, data, indptr, out):
    """``P(y = 1)`` of every CSR row under the whole model (``w``: weights then the bias; ``V``: factors).

    Features at or beyond ``V.shape[0]`` (unseen in training) are ignored.
    """
    nf = V.shape[0]
    s = np.empty(V.shape[1])
    for i in range(out.shape[0]):
        z = row_score(w, w[nf], V, indices, 0, data, indptr[i], indptr[i + 1], s)
        out[i] = 1.0 / (1.0 + np.exp(-z))
    return out


@njit(cache=True, nogil=True)
def take_rows(indptr, indices, data, order, out_indptr, out_indices, out_data):
    """Copy the CSR rows ``order`` (in that order) into ``out_*`` (sized by the caller)."""
    out_indptr[0] = 0
    q = 0
    for t in range(order.shape[0]):
        i = order[t]
        for p in range(indptr[i], indptr[i + 1]):
            out_indices[q] = indices[p]
            out_data[q] = data[p]
            q += 1
        out_indptr[t + 1] = q

