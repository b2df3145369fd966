"""Tests of the numba kernels over striped shards (tables/kernels.py) and of update rules (tables/rules.py).

Every kernel result is compared with numpy on the same table kept unstriped:
row ``k`` of a table over ``S`` shards is ``shards[k % S][k // S]``.
"""

from __future__ import annotations

import numpy as np
import pytest

from parasol_hybrid.errors import RuleError, TableError
from parasol_hybrid.tables import kernels as K
from parasol_hybrid.tables.rules import get_rule, rule_names, update_rule
from parasol_hybrid.tables.spec import TableSpec

pytestmark = pytest.mark.timeout(120)

SHARD_COUNTS = [1, 2, 3, 4]


@update_rule("test_clip_add", hyper={"clip": 0.5})
def clip_add(param, state, delta, hp):
    """param += delta clipped element-wise to [-clip, clip]."""
    c = hp[0]
    for j in range(param.shape[0]):
        param[j] += min(max(delta[j], -c), c)


def stripe(full: np.ndarray, nshards: int) -> tuple:
    """The shards of ``full`` (C-contiguous copies): shard s holds rows s, s+S, s+2S..."""
    return tuple(full[s::nshards].copy() for s in range(nshards))


def unstripe(shards: tuple, rows: int) -> np.ndarray:
    out = np.empty((rows, shards[0].shape[1]), dtype=shards[0].dtype)
    K.gather_all(shards, out)
    return out


def random_table(rng, rows, dim, dtype):
    if np.dtype(dtype).kind == "i":
        return rng.integers(-1000, 1000, size=(rows, dim)).astype(dtype)
    return rng.standard_normal((rows, dim)).astype(dtype)


# ----------------------------------------------------------------- layout


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_shard_rows_cover_every_row_once(nshards):
    for rows in range(1, 12):
        sizes = [K.shard_rows(rows, nshards, s) for s in range(nshards)]
        assert sizes == [len(range(s, rows, nshards)) for s in range(nshards)]


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_gather_all_unstripes(nshards):
    full = random_table(np.random.default_rng(1), 23, 3, "float64")
    np.testing.assert_array_equal(unstripe(stripe(full, nshards), 23), full)


# ----------------------------------------------------------------- gather / scatter


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_gather_matches_numpy(nshards, dtype):
    rng = np.random.default_rng(nshards)
    rows, dim = 37, 5
    full = random_table(rng, rows, dim, dtype)
    shards = stripe(full, nshards)
    keys = rng.integers(0, rows, size=100).astype(np.int64)  # with repeats
    out = np.zeros((len(keys), dim), dtype=dtype)
    assert K.gather(shards, rows, keys, out) == -1
    np.testing.assert_array_equal(out, full[keys])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_scatter_add_matches_numpy_and_repeated_keys_add_up(nshards, dtype):
    rng = np.random.default_rng(10 + nshards)
    rows, dim = 29, 4
    full = random_table(rng, rows, dim, dtype)
    shards = stripe(full, nshards)
    keys = np.concatenate([rng.integers(0, rows, size=200), [3, 3, 3, rows - 1, 0]]).astype(np.int64)
    deltas = random_table(rng, len(keys), dim, dtype)
    assert K.scatter_add(shards, rows, keys, deltas) == -1
    expected = full.copy()
    np.add.at(expected, keys, deltas)
    if dtype == "int64":
        np.testing.assert_array_equal(unstripe(shards, rows), expected)
    else:
        np.testing.assert_allclose(unstripe(shards, rows), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_scatter_assign_last_write_wins(nshards):
    rng = np.random.default_rng(20 + nshards)
    rows, dim = 17, 3
    full = random_table(rng, rows, dim, "float64")
    shards = stripe(full, nshards)
    keys = np.array([5, 0, 5, 16, 9, 5, 0], dtype=np.int64)
    values = random_table(rng, len(keys), dim, "float64")
    assert K.scatter_assign(shards, rows, keys, values) == -1
    expected = full.copy()
    for k, v in zip(keys, values):  # in order: the last write of a key stays
        expected[k] = v
    np.testing.assert_array_equal(unstripe(shards, rows), expected)


@pytest.mark.parametrize("bad_key", [-1, 13, 10**9])
@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_bad_key_returns_its_position_and_writes_nothing(nshards, bad_key):
    rng = np.random.default_rng(30 + nshards)
    rows, dim = 13, 2
    full = random_table(rng, rows, dim, "float64")
    keys = np.array([0, 4, 12, bad_key, 7], dtype=np.int64)  # good keys before and after the bad one
    vals = np.ones((len(keys), dim))
    assert K.check_keys(keys, rows) == 3
    assert K.check_keys(keys[:3], rows) == -1
    for kernel in (K.scatter_add, K.scatter_assign):
        shards = stripe(full, nshards)
        assert kernel(shards, rows, keys, vals) == 3
        np.testing.assert_array_equal(unstripe(shards, rows), full)
    shards = stripe(full, nshards)
    out = np.full((len(keys), dim), -7.0)
    assert K.gather(shards, rows, keys, out) == 3
    assert (out == -7.0).all()


# ----------------------------------------------------------------- initialisation


def filled(kind: str, rows: int, dim: int, nshards: int, a=0.0, b=1.0, seed=7, dtype="float64") -> np.ndarray:
    """The whole table as fill_init makes it over ``nshards`` shards."""
    shards = tuple(np.empty((K.shard_rows(rows, nshards, s), dim), dtype=dtype) for s in range(nshards))
    for s, arr in enumerate(shards):
        K.fill_init(arr, s, nshards, K.INIT_KINDS[kind], a, b, seed)
    return unstripe(shards, rows)


@pytest.mark.parametrize("kind", ["zeros", "constant", "uniform", "normal"])
def test_fill_init_is_the_same_for_any_number_of_shards(kind):
    one = filled(kind, 31, 3, 1, a=-0.5, b=2.0)
    for nshards in SHARD_COUNTS[1:]:
        np.testing.assert_array_equal(filled(kind, 31, 3, nshards, a=-0.5, b=2.0), one)
    if kind in ("uniform", "normal"):
        assert len(np.unique(one)) == one.size  # random values, not one value repeated
        assert not np.array_equal(filled(kind, 31, 3, 1, a=-0.5, b=2.0, seed=8), one)  # the seed matters


def test_fill_init_zeros_and_constant():
    assert (filled("zeros", 10, 2, 3) == 0).all()
    assert (filled("constant", 10, 2, 3, a=4.25) == 4.25).all()
    assert (filled("constant", 10, 2, 2, a=3, dtype="int64") == 3).all()


def test_fill_init_normal_has_the_right_mean_and_std():
    mean, std = 1.5, 0.2
    x = filled("normal", 20000, 4, 3, a=mean, b=std, dtype="float32").astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / np.sqrt(n)
    assert abs(x.std() - std) < 0.02 * std
    # the shape of a normal: about 68.3% within one std
    assert abs(np.mean(np.abs(x - mean) < std) - 0.6827) < 0.01
    assert abs(x[:, 0].mean() - mean) < 5 * std / np.sqrt(x.shape[0])  # every column, not only overall


def test_fill_init_uniform_stays_within_bounds_and_fills_them():
    low, high = -3.0, 5.0
    x = filled("uniform", 10000, 3, 4, a=low, b=high)
    assert x.min() >= low and x.max() < high
    assert x.min() < low + 0.01 and x.max() > high - 0.01
    assert abs(x.mean() - (low + high) / 2) < 5 * (high - low) / np.sqrt(12 * x.size)
    hist, _ = np.histogram(x, bins=8, range=(low, high))
    assert hist.min() > 0.9 * x.size / 8


# ----------------------------------------------------------------- rules


def states_for(rule, shards):
    return tuple(np.zeros((sh.shape[0], rule.state_slots, sh.shape[1]), dtype=sh.dtype) for sh in shards)


def apply_rule(name, full, keys, deltas, nshards, overrides=None):
    """Apply rule ``name`` through Rule.apply on a striped copy of ``full``; the new unstriped table."""
    rule = get_rule(name)
    shards = stripe(full, nshards)
    bad = rule.apply(shards, states_for(rule, shards), full.shape[0], keys, deltas, rule.hyper_array(overrides))
    assert bad == -1
    return unstripe(shards, full.shape[0])


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_builtin_rules_match_numpy(nshards):
    rng = np.random.default_rng(40 + nshards)
    rows, dim = 19, 3
    full = rng.standard_normal((rows, dim))
    keys = np.concatenate([rng.integers(0, rows, 60), [2, 2, 2]]).astype(np.int64)
    deltas = rng.standard_normal((len(keys), dim))

    expected = full.copy()
    np.add.at(expected, keys, deltas)
    np.testing.assert_allclose(apply_rule("add", full, keys, deltas, nshards), expected, rtol=1e-12)

    expected = full.copy()
    for k, d in zip(keys, deltas):
        expected[k] = d
    np.testing.assert_array_equal(apply_rule("assign", full, keys, deltas, nshards), expected)

    for lr in (None, 0.3):
        expected = full.copy()
        np.add.at(expected, keys, -(lr or get_rule("sgd").hyper["lr"]) * deltas)
        got = apply_rule("sgd", full, keys, deltas, nshards, None if lr is None else {"lr": lr})
        np.testing.assert_allclose(got, expected, rtol=1e-12)

    lr, eps = 0.05, 1e-6
    expected = full.copy()
    acc = np.zeros_like(full)
    for k, g in zip(keys, deltas):  # in push order: each step sees the squares summed so far
        acc[k] += g * g
        expected[k] -= lr * g / (np.sqrt(acc[k]) + eps)
    got = apply_rule("adagrad", full, keys, deltas, nshards, {"lr": lr, "eps": eps})
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_adagrad_keeps_its_state_between_pushes():
    rule = get_rule("adagrad")
    assert rule.state_slots == 1
    full = np.zeros((4, 2))
    shards = stripe(full, 2)
    states = states_for(rule, shards)
    keys = np.array([1], dtype=np.int64)
    g = np.array([[2.0, -1.0]])
    hp = rule.hyper_array({"lr": 1.0, "eps": 0.0})
    rule.apply(shards, states, 4, keys, g, hp)
    rule.apply(shards, states, 4, keys, g, hp)
    np.testing.assert_allclose(states[1][0, 0], 2 * g[0] ** 2)  # row 1 = shard 1, local row 0
    np.testing.assert_allclose(unstripe(shards, 4)[1], -g[0] / np.abs(g[0]) - g[0] / np.sqrt(2 * g[0] ** 2))


def test_rule_apply_rejects_a_bad_key_without_writing():
    rule = get_rule("sgd")
    full = np.arange(12.0).reshape(6, 2)
    shards = stripe(full, 3)
    keys = np.array([1, 2, 6], dtype=np.int64)
    assert rule.apply(shards, states_for(rule, shards), 6, keys, np.ones((3, 2)), rule.hyper_array()) == 2
    np.testing.assert_array_equal(unstripe(shards, 6), full)


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
def test_custom_rule_runs_through_rule_apply(nshards):
    rng = np.random.default_rng(50 + nshards)
    full = rng.standard_normal((11, 4))
    keys = np.array([0, 3, 3, 10, 7], dtype=np.int64)
    deltas = 2.0 * rng.standard_normal((len(keys), 4))
    assert np.abs(deltas).max() > 0.5  # some elements really get clipped
    for clip in (None, 0.2):
        c = clip or 0.5
        expected = full.copy()
        np.add.at(expected, keys, np.clip(deltas, -c, c))
        got = apply_rule("test_clip_add", full, keys, deltas, nshards, None if clip is None else {"clip": clip})
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert "test_clip_add" in rule_names()
    assert get_rule("test_clip_add").hyper == {"clip": 0.5}


def test_registering_a_name_twice_raises():
    def other(param, state, delta, hp):
        pass

    for name in ("test_clip_add", "add"):
        with pytest.raises(RuleError, match=name):
            update_rule(name)(other)
    assert get_rule("add").fn is not other


def test_unknown_rule_lists_the_known_ones():
    with pytest.raises(RuleError) as info:
        get_rule("no_such_rule")
    msg = str(info.value)
    assert "no_such_rule" in msg
    for name in rule_names():
        assert name in msg
    assert {"add", "assign", "sgd", "adagrad", "test_clip_add"} <= set(rule_names())


def test_hyper_array_rejects_unknown_names_and_keeps_declared_order():
    rule = get_rule("adagrad")
    lr, eps = rule.hyper["lr"], rule.hyper["eps"]
    np.testing.assert_array_equal(rule.hyper_array(), [lr, eps])
    np.testing.assert_array_equal(rule.hyper_array({"eps": 0.5}), [lr, 0.5])
    assert rule.hyper_array().dtype == np.float64
    with pytest.raises(RuleError, match="momentum"):
        rule.hyper_array({"momentum": 0.9})
    with pytest.raises(RuleError, match="clip"):
        get_rule("add").hyper_array({"clip": 1.0})
    with pytest.raises((RuleError, TableError), match="momentum"):
        TableSpec.build(0, "w", (3, 2), rule="sgd", hyper={"momentum": 0.9})


# ----------------------------------------------------------------- bad values (issue 9 item 7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("nshards", [1, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_nan_or_inf_delta_is_refused_in_the_first_pass_and_writes_nothing(nshards, bad, dtype):
    rows, dim = 13, 4
    full = random_table(np.random.default_rng(60 + nshards), rows, dim, dtype)
    keys = np.array([0, 4, 12, 5, 7], dtype=np.int64)
    vals = np.ones((len(keys), dim), dtype=dtype)
    vals[3, 2] = bad  # row 3 of the push; rows before and after it are fine
    n = len(keys)
    assert K.check_push(keys, rows, vals) == K.BAD_VALUE * n + 3
    assert K.refusal(K.BAD_VALUE * n + 3, n) == (K.BAD_VALUE, 3)
    assert K.first_bad_row(vals) == 3 and K.first_bad_row(vals[:3]) == -1
    for kernel in (K.scatter_add, K.scatter_assign):
        shards = stripe(full, nshards)
        assert kernel(shards, rows, keys, vals) == K.BAD_VALUE * n + 3
        np.testing.assert_array_equal(unstripe(shards, rows), full)
    for name in ("add", "assign", "sgd", "adagrad", "test_clip_add"):
        rule = get_rule(name)
        shards = stripe(full, nshards)
        states = states_for(rule, shards)
        assert rule.apply(shards, states, rows, keys, vals, rule.hyper_array()) == K.BAD_VALUE * n + 3, name
        np.testing.assert_array_equal(unstripe(shards, rows), full)
        assert all((s == 0).all() for s in states), f"{name}: the state was written"
    # the first refused entry wins: a bad key before the bad row is reported as the key
    keys[1] = rows
    assert K.check_push(keys, rows, vals) == K.BAD_KEY * n + 1
    assert K.refusal(K.check_push(keys, rows, vals), n) == (K.BAD_KEY, 1)


def test_finite_extremes_and_int_tables_pass_the_value_check():
    big = np.array([[np.finfo(np.float64).max, -np.finfo(np.float64).max, 5e-324, -0.0]])
    keys = np.array([1], dtype=np.int64)
    shards = (np.zeros((2, 4)),)
    assert K.scatter_assign(shards, 2, keys, big) == -1
    np.testing.assert_array_equal(shards[0][1], big[0])
    ints = (np.zeros((3, 2), dtype=np.int64),)
    extremes = np.array([[np.iinfo(np.int64).max, np.iinfo(np.int64).min]])
    assert K.scatter_add(ints, 3, np.array([2], dtype=np.int64), extremes) == -1
    np.testing.assert_array_equal(ints[0][2], extremes[0])
