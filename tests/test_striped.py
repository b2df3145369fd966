"""The striping helpers agree with a plain Python model of the rule (row k: shard k % S, position k // S)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from parasol_hybrid import local_row, shard_keys, shard_of, striped_row


@njit(nogil=True)  # not cached: a cached caller would hide a change to the inlined helpers
def _add_to_rows(shards, keys, deltas):
    for t in range(keys.shape[0]):
        row = striped_row(shards, keys[t])
        for j in range(row.shape[0]):
            row[j] += deltas[t, j]


@njit(nogil=True)  # not cached: a cached caller would hide a change to the inlined helpers
def _places(keys, nshards, out):
    for t in range(keys.shape[0]):
        out[t, 0] = shard_of(keys[t], nshards)
        out[t, 1] = local_row(keys[t], nshards)


@pytest.mark.parametrize("nshards", [1, 2, 3])
def test_striped_rows_are_the_rows_a_plain_loop_finds(nshards):
    rows, dim = 11, 3
    rng = np.random.default_rng(nshards)
    shards = tuple(np.zeros((len(range(s, rows, nshards)), dim)) for s in range(nshards))
    keys = rng.integers(0, rows, 40)
    deltas = rng.normal(size=(40, dim))
    _add_to_rows(shards, keys, deltas)
    want = np.zeros((rows, dim))
    for k, d in zip(keys.tolist(), deltas):  # the model: a table of rows, no striping at all
        want[k] += d
    got = np.zeros((rows, dim))
    for s in range(nshards):
        got[shard_keys(s, rows, nshards)] = shards[s]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    places = np.zeros((40, 2), dtype=np.int64)
    _places(keys, nshards, places)
    assert places.tolist() == [[k % nshards, k // nshards] for k in keys.tolist()]
    assert sorted(np.concatenate([shard_keys(s, rows, nshards) for s in range(nshards)]).tolist()) == list(range(rows))
