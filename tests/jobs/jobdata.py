"""What the test jobs push, as pure numpy functions: the jobs push it, the tests recompute the expected tables."""

from __future__ import annotations

import numpy as np

COUNT_ROWS, COUNT_DIM = 40, 2      # the int64 table every worker adds counts to (overlapping keys)
FLOAT_ROWS, FLOAT_DIM = 30, 3      # the float32 table; worker w owns rows w, w + n, w + 2n, ...
FLOAT_SEED = 12345                 # the float table's init seed (normal, mean 0, std 1)


def increments(worker: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys (with repeats, shared by all workers) and int64 counts that ``worker`` pushes at ``step``."""
    rng = np.random.default_rng([worker, step])
    n = 20000 if step % 10 == 0 else int(rng.integers(1, 30))  # big pushes make racing workers collide
    keys = rng.integers(0, COUNT_ROWS, n).astype(np.int64)
    counts = rng.integers(1, 5, (n, COUNT_DIM)).astype(np.int64)
    return keys, counts


def float_delta(rows: np.ndarray) -> np.ndarray:
    """The float32 delta pushed to ``rows`` (exact in float32)."""
    rows = np.asarray(rows, dtype=np.float32)[:, None]
    return (rows + 1) * np.float32(0.25) + np.arange(FLOAT_DIM, dtype=np.float32)


def scaled_delta(rows: np.ndarray, which: int) -> np.ndarray:
    """Deltas pushed with the custom rule ``test_scale_add`` (which = 0: default scale, 1: scale=0.5)."""
    rows = np.asarray(rows, dtype=np.float32)[:, None]
    return (rows + 1 + which) * np.float32(0.5) * np.ones(FLOAT_DIM, dtype=np.float32)
