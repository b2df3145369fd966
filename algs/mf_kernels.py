"""numba kernels of biased matrix factorisation by SGD, over striped table shards.

Row ``k`` of a table striped over ``S`` shards is ``shards[k % S][k // S]``;
with a single plain array passed as a 1-tuple these are also the
single-process reference loop (the limit the parameter server is measured
against).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: ratings :func:`sgd_blocks` visits consecutively (16 KiB of each rating array): a pass reads the ratings
#: sequentially, block by block, in a random block order, so it costs the same per rating at any size
BLOCK = 1024


@njit(cache=True, nogil=True)
def sgd_blocks(P, Q, BU, BI, users, items, ratings, blocks, block, offset, mu, lr, reg):
    """One pass of SGD, updating rows in place; returns the sum of squared errors. The ratings are visited in
    blocks of ``block`` consecutive ones (starting at ``offset``, wrapping around), the blocks in the order
    ``blocks``: the rating arrays are read sequentially (one cache
    miss per 8 ratings instead of three per rating), so a pass costs the same per rating at 1 M or 100 M.
    The ratings are shuffled once when loaded; ``blocks`` and ``offset`` change every round."""
    n = ratings.shape[0]
    SP = len(P)
    SQ = len(Q)
    k = P[0].shape[1]
    sse = 0.0
    for b in range(blocks.shape[0]):
        lo = blocks[b] * block
        hi = min(lo + block, n)
        for s in range(lo, hi):
            t = s + offset
            if t >= n:
                t -= n
            u = users[t]
            i = items[t]
            pu = P[u % SP]
            ru = u // SP
            qi = Q[i % SQ]
            ri = i // SQ
            bu = BU[u % SP]
            bi = BI[i % SQ]
            pred = mu + bu[ru, 0] + bi[ri, 0]
            for j in range(k):
                pred += pu[ru, j] * qi[ri, j]
            err = ratings[t] - pred
            sse += err * err
            bu[ru, 0] += lr * (err - reg * bu[ru, 0])
            bi[ri, 0] += lr * (err - reg * bi[ri, 0])
            for j in range(k):
                p = pu[ru, j]
                q = qi[ri, j]
                pu[ru, j] = p + lr * (err * q - reg * p)
                qi[ri, j] = q + lr * (err * p - reg * q)
    return sse


@njit(cache=True, nogil=True)
def sse(P, Q, BU, BI, users, items, ratings, mu):
    """Sum of squared errors of the current model on (users, items, ratings); id -1 means unseen."""
    SP = len(P)
    SQ = len(Q)
    k = P[0].shape[1]
    total = 0.0
    for t in range(users.shape[0]):
        u = users[t]
        i = items[t]
        pred = mu
        if u >= 0:
            pred += BU[u % SP][u // SP, 0]
        if i >= 0:
            pred += BI[i % SQ][i // SQ, 0]
        if u >= 0 and i >= 0:
            pu = P[u % SP]
            qi = Q[i % SQ]
            ru = u // SP
            ri = i // SQ
            for j in range(k):
                pred += pu[ru, j] * qi[ri, j]
        err = ratings[t] - pred
        total += err * err
    return total


def index_of(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the sorted ``vocab``; -1 where an id is not in it."""
    vocab = np.asarray(vocab, dtype=str)
    ids = np.asarray(ids, dtype=str)
    pos = np.searchsorted(vocab, ids)
    pos = np.minimum(pos, len(vocab) - 1)
    found = vocab[pos] == ids
    return np.where(found, pos, -1).astype(np.int64)
