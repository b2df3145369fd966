"""numba kernels of biased matrix factorisation by SGD, over striped table shards.

The tables are passed as their shard tuples (``table.shards``) and rows are
reached with :func:`~parasol_hybrid.tables.striped.striped_row`; with a
single plain array passed as a 1-tuple these are also the single-process
reference loop (the limit the parameter server is measured against).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from parasol_hybrid.tables.striped import striped_row

#: ratings :func:`sgd_blocks` visits consecutively (16 KiB of each rating array): a pass reads the ratings
#: sequentially, block by block, in a random block order, so it costs the same per rating at any size
BLOCK = 1024


@njit(inline="always", nogil=True)
def add_dot(acc, P, u, Q, i):
    """``acc + P[u]·Q[i]``, added term by term into ``acc`` (rows of the striped tables ``P`` and ``Q``)."""
    for j in range(P[0].shape[1]):  # looked up at each use: see striped.py on views held across branches
        acc += striped_row(P, u)[j] * striped_row(Q, i)[j]
    return acc


@njit(cache=True, nogil=True)
def sgd_blocks(P, Q, BU, BI, users, items, ratings, blocks, block, offset, mu, lr, reg):
    """One pass of SGD, updating rows in place; returns the sum of squared errors. The ratings are visited in
    blocks of ``block`` consecutive ones (starting at ``offset``, wrapping around), the blocks in the order
    ``blocks``: the rating arrays are read sequentially (one cache
    miss per 8 ratings instead of three per rating), so a pass costs the same per rating at 1 M or 100 M.
    The ratings are shuffled once when loaded; ``blocks`` and ``offset`` change every round."""
    n = ratings.shape[0]
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
            pu = striped_row(P, u)
            qi = striped_row(Q, i)
            bu = striped_row(BU, u)
            bi = striped_row(BI, i)
            pred = mu + bu[0] + bi[0]
            for j in range(k):
                pred += pu[j] * qi[j]
            err = ratings[t] - pred
            sse += err * err
            bu[0] += lr * (err - reg * bu[0])
            bi[0] += lr * (err - reg * bi[0])
            for j in range(k):
                p = pu[j]
                q = qi[j]
                pu[j] = p + lr * (err * q - reg * p)
                qi[j] = q + lr * (err * p - reg * q)
    return sse


@njit(cache=True, nogil=True)
def sse(P, Q, BU, BI, users, items, ratings, mu):
    """Sum of squared errors of the current model on (users, items, ratings); id -1 means unseen."""
    total = 0.0
    for t in range(users.shape[0]):
        u = users[t]
        i = items[t]
        pred = mu
        if u >= 0:
            pred += striped_row(BU, u)[0]
        if i >= 0:
            pred += striped_row(BI, i)[0]
        if u >= 0 and i >= 0:
            pred = add_dot(pred, P, u, Q, i)
        err = ratings[t] - pred
        total += err * err
    return total

