"""What rules_nodes_job.py pushes (pure numpy, so tests recompute the one-node result independently)."""

from __future__ import annotations

import numpy as np

SGD_ROWS, SGD_DIM, SGD_LR = 6, 3, 0.1
BOX_ROWS, BOX_DIM, BOX_LR, BOX_CLIP = 6, 2, 1.0, 1.0
MOMENTUM_LR, MOMENTUM_MU = 0.005, 0.9
COEF = np.array([2.0, -1.0, 0.5, 0.7])


def sgd_gradient(worker: int, step: int) -> np.ndarray:
    """The gradient worker ``worker`` pushes at ``step`` (every row)."""
    rng = np.random.default_rng(1000 * worker + step)
    return rng.normal(size=(SGD_ROWS, SGD_DIM))


def box_delta(worker: int, step: int) -> np.ndarray:
    """A delta that often pushes rows against the box ``[-BOX_CLIP, BOX_CLIP]``."""
    rng = np.random.default_rng(7000 + 1000 * worker + step)
    return rng.normal(scale=1.5, size=(BOX_ROWS, BOX_DIM))


def box_reference(nworker: int, steps: int) -> tuple[np.ndarray, list]:
    """The table after the turns of rules_nodes_job's ``box`` case, and what each worker saw after each push."""
    t = np.zeros((BOX_ROWS, BOX_DIM))
    seen = [[] for _ in range(nworker)]
    for step in range(steps):
        for w in range(nworker):
            t = np.clip(t - BOX_LR * box_delta(w, step), -BOX_CLIP, BOX_CLIP)
            seen[w].append(t.copy())
    return t, seen


def regression(n: int = 3000, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """A fixed linear-regression data set: ``n × 4`` features and targets ``X @ COEF + noise``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, COEF.shape[0]))
    y = X @ COEF + 0.1 * rng.normal(size=n)
    return X, y
