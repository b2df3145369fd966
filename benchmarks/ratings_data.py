"""Synthetic MovieLens-shaped ratings from a low-rank model plus noise (fixed seed).

The default shape is MovieLens-1M's: 6,040 users, 3,706 items, 1,000,209
distinct (user, item) pairs. Users' activity is log-normal and items'
popularity Zipf-like, so, as in the real set, a few users and items have
most ratings. Each rating is

    clip(round(mu + bu[u] + bi[i] + p[u]·q[i] + noise), 1, 5)

with a rank-8 ``p·q`` (std ~0.6), so a model with biases and factors beats
the biases alone and test RMSE means something.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Ratings", "synthetic", "split", "write_tsv", "ML1M", "QUICK"]

ML1M = {"users": 6040, "items": 3706, "ratings": 1_000_209}
QUICK = {"users": 600, "items": 400, "ratings": 50_000}


@dataclass
class Ratings:
    """Triples as 0-based ``int64`` user and item ids and ``float64`` ratings."""

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def take(self, idx) -> "Ratings":
        return Ratings(self.users[idx], self.items[idx], self.values[idx])


def synthetic(users: int, items: int, ratings: int, rank: int = 8, seed: int = 0) -> Ratings:
    """``ratings`` distinct (user, item) pairs in random order, rated by a noisy low-rank model."""
    if ratings > users * items:
        raise ValueError(f"ratings ({ratings}) must be at most users × items ({users * items})")
    rng = np.random.default_rng(seed)
    user_w = rng.lognormal(0.0, 1.0, users)
    item_w = rng.permutation(1.0 / np.arange(1, items + 1) ** 0.8)
    user_w /= user_w.sum()
    item_w /= item_w.sum()
    pairs = np.empty(0, dtype=np.int64)
    draw = int(ratings * 1.3)
    while len(pairs) < ratings:  # draw pairs by popularity until there are enough distinct ones
        u = rng.choice(users, draw, p=user_w)
        i = rng.choice(items, draw, p=item_w)
        pairs = np.union1d(pairs, u.astype(np.int64) * items + i)
        draw = max(draw // 2, 1000)
    pairs = rng.choice(pairs, ratings, replace=False)  # a random subset, in random order
    u, i = pairs // items, pairs % items

    mu = 3.6
    bu = rng.normal(0.0, 0.4, users)
    bi = rng.normal(0.0, 0.5, items)
    scale = (0.6**2 / rank) ** 0.25  # so that p·q has std ~0.6
    P = rng.normal(0.0, scale, (users, rank))
    Q = rng.normal(0.0, scale, (items, rank))
    clean = mu + bu[u] + bi[i] + np.einsum("nk,nk->n", P[u], Q[i])
    values = np.clip(np.rint(clean + rng.normal(0.0, 0.7, ratings)), 1.0, 5.0)
    return Ratings(u.astype(np.int64), i.astype(np.int64), values.astype(np.float64))


def split(data: Ratings, test_fraction: float = 0.1, seed: int = 1) -> tuple[Ratings, Ratings]:
    """A random (train, test) split."""
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = int(round(len(data) * test_fraction))
    return data.take(np.sort(order[n_test:])), data.take(np.sort(order[:n_test]))


def write_tsv(data: Ratings, path: Path) -> Path:
    """Write ``user<TAB>item<TAB>rating`` lines with 1-based ids (as MovieLens has)."""
    lines = (f"{u}\t{i}\t{int(r)}\n" for u, i, r in
             zip((data.users + 1).tolist(), (data.items + 1).tolist(), data.values.tolist()))
    path.write_text("".join(lines))
    return path
