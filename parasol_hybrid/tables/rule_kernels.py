"""The apply kernel of an update rule, compiled once and then loaded from numba's on-disk cache.

A rule's kernel is :func:`_apply_rows` with the rule's row function inlined
into its loop (one kernel per rule: inlining is what makes a user rule as fast
as a built-in one). numba cannot cache such a kernel by itself: the rule is a
closure variable, and numba keys a closure's cache entry on a pickle of the
variable, which for a jitted function carries a random per-process id, so
every rank compiled every rule again. The kernel here is cached under a key
made of what decides its machine code instead: the kernel's own code, the
rule's code (bytecode, names, constants, nested functions), the simple values
it closes over or reads as globals, and the size and time of the rule's source
file. An edit of the rule or of its file makes a new key; a rule that cannot
be keyed that way (defined outside a file, closing over an array) is compiled
without the cache, as before. As with numba's own cache, an edit of a jitted
helper that the rule calls from another file is not seen: touch the rule's file.

Passing the rule as an argument of one module-level kernel does not do it
either (numba 0.68): a jitted function argument has a per-process type, so the
cache never hits, and a first-class function type caches but calls the rule
through a pointer, unboxed on every call, several times slower.
"""

from __future__ import annotations

import hashlib
import os
import types
from typing import Callable

from numba import njit
from numba.core.caching import FunctionCache

from .kernels import row_not_finite

__all__ = ["compile_apply", "rule_digest"]

#: values a rule may close over or read as globals and still be cached (numba freezes them into the code)
_SIMPLE = (bool, int, float, complex, str, bytes, type(None))


def compile_apply(name: str, fn) -> Callable:
    """The kernel ``apply(shards, states, rows, keys, deltas, hp) -> -1`` or a refusal code for the rule
    ``name`` whose jitted row function is ``fn``: cached on disk when the rule can be keyed."""
    apply = _apply_rows(fn)
    apply.__qualname__ = apply.__name__ = f"apply_rule_{name}"  # names the cache files
    kernel = njit(nogil=True)(apply)
    digest = rule_digest(fn.py_func)
    if digest is not None:
        kernel._cache = _RuleKernelCache(kernel.py_func, digest)
    return kernel


def _apply_rows(fn):
    """The apply kernel's Python function, with the rule ``fn`` as a closure variable (numba inlines it)."""
    def apply(shards, states, rows, keys, deltas, hp):
        S = len(shards)
        n = keys.shape[0]
        for i in range(n):  # first pass: refuse (writing nothing) a key out of range or a NaN/±Inf delta
            k = keys[i]
            if k < 0 or k >= rows:
                return i  # BAD_KEY * n + i
            if row_not_finite(deltas, i):
                return n + i  # BAD_VALUE * n + i
        for i in range(n):
            k = keys[i]
            s = k % S
            r = k // S
            fn(shards[s][r], states[s][r], deltas[i], hp)
        return -1

    return apply


def rule_digest(py_func) -> str | None:
    """A hex digest of what decides a rule's machine code, or None when it cannot be told (no source
    file, or it closes over or reads a global value that is not a plain number or string)."""
    path = py_func.__code__.co_filename
    try:
        st = os.stat(path)
    except OSError:
        return None
    h = hashlib.sha256()
    h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{py_func.__qualname__}\0".encode())
    if not _feed_code(h, py_func.__code__, py_func.__globals__):
        return None
    for cell in py_func.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            return None
        if not isinstance(value, _SIMPLE):
            return None
        h.update(repr(value).encode())
    return h.hexdigest()


def _feed_code(h, code: types.CodeType, globs: dict) -> bool:
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if not _feed_code(h, const, globs):
                return False
        else:
            h.update(repr(const).encode())
    for gname in code.co_names:
        value = globs.get(gname)
        if isinstance(value, _SIMPLE):
            h.update(f"{gname}={value!r}".encode())
        elif isinstance(value, (types.ModuleType, type)) or value is None or hasattr(value, "py_func"):
            h.update(f"{gname}:{getattr(value, '__name__', type(value).__name__)}".encode())
        elif callable(value):
            h.update(f"{gname}:{getattr(value, '__qualname__', type(value).__name__)}".encode())
        else:  # a global array or object: numba would freeze its value, which the key cannot see
            return False
    return True


class _RuleKernelCache(FunctionCache):
    """numba's function cache, keyed on the rule's digest instead of a pickle of the closure."""

    def __init__(self, py_func, digest: str):
        self._digest = digest
        super().__init__(py_func)

    def _index_key(self, sig, codegen):
        code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
        return (sig, codegen.magic_tuple(), (code, self._digest))
