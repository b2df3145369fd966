"""Update rules: named numba functions that apply a pushed delta to a row.

A rule is a function ``rule(param, state, delta, hp)`` over one row:
``param`` is the table row (1-D, writable), ``state`` the row's optimiser
state (2-D, ``slots × dim``; zero slots for stateless rules), ``delta`` the
pushed row and ``hp`` a float64 array of hyper-parameters in the order the rule
declared them. It is compiled with ``numba.njit(inline="always")`` and inlined
into the rule's apply kernel (:mod:`.rule_kernels`), so a user rule runs as
fast as a built-in one, and that kernel is kept in numba's on-disk cache: a
rank loads it instead of compiling it.

Register a rule with the :func:`update_rule` decorator, in any module that
every rank imports (usually the algorithm's own)::

    from parasol_hybrid import update_rule

    @update_rule("clipped_sgd", hyper={"lr": 0.1, "clip": 1.0})
    def clipped_sgd(param, state, delta, hp):
        for j in range(param.shape[0]):
            g = min(max(delta[j], -hp[1]), hp[1])
            param[j] -= hp[0] * g

A rule is *additive* (``additive=True``) when its effect on a row is
``param += f(delta, hp)``, whatever the row holds and with no state: the
built-in ``add`` and ``sgd`` are. Changes made by additive rules can be
summed, so a node may apply them to its cache of a remote shard and send the
sum on at the next clock. Every other rule (``assign``, ``adagrad``, a user
rule not declared additive) is applied by the shard's owner, which returns
the resulting rows, so a rule means the same on one node and on many.

Registering the same function again under the same name with the same
arguments (an entry script imported twice, say) is harmless: the first
registration stays. Another function under a taken name is an error unless
``replace=True``.

Messages name rules; code is never sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit

from ..errors import RuleError
from .rule_kernels import compile_apply

__all__ = ["Rule", "update_rule", "get_rule", "rule_names"]

FLOAT_DTYPES = ("float32", "float64")
ALL_DTYPES = ("float32", "float64", "int64")


@dataclass
class Rule:
    """A registered update rule: its name, compiled row function and metadata."""

    name: str
    fn: Callable
    hyper: dict[str, float]
    state_slots: int = 0
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    #: the effect on a row is ``param += f(delta, hp)`` (no state, independent of the row)
    additive: bool = False
    _apply: Callable | None = field(default=None, repr=False)

    def hyper_array(self, overrides: dict | None = None) -> np.ndarray:
        """The hyper-parameters as a float64 array, defaults updated by ``overrides``."""
        values = dict(self.hyper)
        for key, val in (overrides or {}).items():
            if key not in values:
                raise RuleError(
                    f"rule {self.name!r} has no hyper-parameter {key!r} (it has: {sorted(values) or 'none'})"
                )
            values[key] = float(val)
        return np.array([values[k] for k in self.hyper], dtype=np.float64)

    @property
    def apply(self) -> Callable:
        """The kernel ``apply(shards, states, rows, keys, deltas, hp) -> -1`` or a refusal code (see
        ``tables/kernels.py``: a key out of range or a NaN/±Inf delta; nothing written)."""
        if self._apply is None:
            self._apply = compile_apply(self.name, self.fn)
        return self._apply

    def registered_as(self, fn: Callable, hyper: dict, state_slots: int, dtypes: tuple, additive: bool) -> bool:
        """True when ``fn`` with these arguments is what this rule was registered with: the same
        qualified name and code (a module imported twice defines equal functions), the same metadata."""
        mine = self.fn.py_func
        return (getattr(fn, "__qualname__", None) == mine.__qualname__
                and getattr(fn, "__code__", None) == mine.__code__
                and (self.hyper, self.state_slots, self.dtypes, self.additive)
                == (hyper, state_slots, dtypes, additive))


_RULES: dict[str, Rule] = {}


def update_rule(
    name: str,
    hyper: dict[str, float] | None = None,
    state_slots: int = 0,
    dtypes: tuple[str, ...] = FLOAT_DTYPES,
    replace: bool = False,
    additive: bool = False,
):
    """Decorator: compile ``fn(param, state, delta, hp)`` with numba and register it as ``name``.

    ``hyper`` names the hyper-parameters and their defaults (their order is the
    order of ``hp``); ``state_slots`` is how many ``dim``-long state vectors a
    row needs (adagrad: 1). ``additive=True`` declares that the rule only ever
    does ``param += f(delta, hp)`` (independent of the row, no state): its
    updates of remote rows may then be summed in the node's cache; any other
    rule runs at the row's owner. Registering a name twice is an error unless
    ``replace=True`` or it is the same function with the same arguments (then
    the first registration stays and its compiled function is returned).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise RuleError(f"rule name {name!r} must be an identifier")
    if additive and state_slots:
        raise RuleError(f"rule {name!r}: an additive rule keeps no state (state_slots={state_slots}); "
                        f"declare it additive=False")

    meta = (dict(hyper or {}), int(state_slots), tuple(dtypes), bool(additive))

    def decorate(fn):
        old = _RULES.get(name)
        if old is not None and not replace:
            if old.registered_as(fn, *meta):
                return old.fn
            raise RuleError(f"update rule {name!r} is already registered (by {old.fn.py_func.__qualname__} "
                            f"with hyper={old.hyper}, state_slots={old.state_slots}, dtypes={old.dtypes}, "
                            f"additive={old.additive}); pass replace=True to replace it")
        jitted = njit(inline="always", nogil=True)(fn)
        _RULES[name] = Rule(name, jitted, *meta)
        return jitted

    return decorate


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; an unknown name lists the known ones."""
    try:
        return _RULES[name]
    except KeyError:
        raise RuleError(f"unknown update rule {name!r} (known rules: {', '.join(sorted(_RULES))})") from None


def rule_names() -> list[str]:
    """Names of every registered rule."""
    return sorted(_RULES)


# ---------------------------------------------------------------- built-in rules


@update_rule("add", dtypes=ALL_DTYPES, additive=True)
def _add(param, state, delta, hp):
    for j in range(param.shape[0]):
        param[j] += delta[j]


@update_rule("assign", dtypes=ALL_DTYPES)
def _assign(param, state, delta, hp):
    for j in range(param.shape[0]):
        param[j] = delta[j]


@update_rule("sgd", hyper={"lr": 0.01}, additive=True)
def _sgd(param, state, delta, hp):
    lr = hp[0]
    for j in range(param.shape[0]):
        param[j] -= lr * delta[j]


@update_rule("adagrad", hyper={"lr": 0.1, "eps": 1e-8}, state_slots=1)
def _adagrad(param, state, delta, hp):
    lr = hp[0]
    eps = hp[1]
    for j in range(param.shape[0]):
        g = delta[j]
        state[0, j] += g * g
        param[j] -= lr * g / (np.sqrt(state[0, j]) + eps)
