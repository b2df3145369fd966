"""What the cluster test jobs push, as pure numpy functions: the jobs push it, tests/test_cluster.py
recomputes the expected tables (no MPI here, so the test process can import it)."""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- exactness (cluster_exact.py)
INT_ROWS, INT_DIM = 37, 2          # int64 table, overlapping keys from every worker
FLOAT_ROWS, FLOAT_DIM = 29, 3      # float64 exact=True table, overlapping keys
VOCAB = 400                        # sparse table: words w0..w399 plus a few odd ones
ODD_WORDS = ["naïve", "café", "x--y", "__", "", "日本語", "A", "a"]


def int_increments(worker: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys (with repeats, shared by every worker) and int64 counts that ``worker`` pushes at ``step``."""
    rng = np.random.default_rng([1, worker, step])
    n = 20000 if step % 3 == 0 else int(rng.integers(1, 40))  # big pushes make racing workers collide
    keys = rng.integers(0, INT_ROWS, n).astype(np.int64)
    return keys, rng.integers(1, 5, (n, INT_DIM)).astype(np.int64)


def float_increments(worker: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys and float64 deltas (multiples of 1/8, so every order of adding them gives the same sum)."""
    rng = np.random.default_rng([2, worker, step])
    n = 20000 if step % 3 == 1 else int(rng.integers(1, 40))
    keys = rng.integers(0, FLOAT_ROWS, n).astype(np.int64)
    return keys, rng.integers(-8, 9, (n, FLOAT_DIM)).astype(np.float64) / 8.0


def words() -> list[str]:
    """Every word the sparse table may see."""
    return [f"w{i}" for i in range(VOCAB)] + ODD_WORDS


def word_increments(worker: int, step: int) -> tuple[list[str], np.ndarray]:
    """Words (with repeats, a different subset per worker and step) and int64 counts (dim 2)."""
    rng = np.random.default_rng([3, worker, step])
    vocab = words()
    hi = len(vocab) - (0 if worker == 0 else len(ODD_WORDS))  # only worker 0 pushes the odd words
    idx = rng.integers(0, hi, int(rng.integers(50, 300)))
    if worker == 0 and step == 0:
        idx = np.concatenate([idx, np.arange(VOCAB, len(vocab))])  # every odd word at least once
    counts = np.stack([np.ones(len(idx), np.int64), rng.integers(1, 4, len(idx))], axis=1)
    return [vocab[i] for i in idx], counts


# ---------------------------------------------------------------- adagrad (cluster_adagrad.py)
ADA_ROWS, ADA_DIM = 24, 3
ADA_LR, ADA_EPS = 0.3, 1e-8
ADA_LR_OVERRIDE = 0.05
ADA_INIT = 0.5


def own_rows(worker: int, nworker: int) -> np.ndarray:
    """The rows only ``worker`` pushes to: pairs (2j, 2j+1) with j % nworker == worker, so both shards of 2."""
    rows = np.arange(ADA_ROWS // 2)
    return np.arange(ADA_ROWS)[np.isin(np.arange(ADA_ROWS) // 2, rows[rows % (2 * nworker) == worker])]


def shared_rows(nworker: int) -> np.ndarray:
    """The rows every worker pushes the same gradient to (pairs j with j % (2 nworker) >= nworker)."""
    own = np.concatenate([own_rows(w, nworker) for w in range(nworker)])
    return np.setdiff1d(np.arange(ADA_ROWS), own)


def targets() -> np.ndarray:
    """What the own rows are pulled towards."""
    r = np.arange(ADA_ROWS, dtype=np.float64)[:, None]
    return np.sin(r + np.arange(ADA_DIM)) * 2.0


def shared_gradient(rows: np.ndarray, step: int) -> np.ndarray:
    """The gradient every worker pushes to ``rows`` at ``step`` (does not depend on the table)."""
    r = np.asarray(rows, dtype=np.float64)[:, None]
    return np.cos(r * 0.7 + step + np.arange(ADA_DIM)) + 0.1 * step
