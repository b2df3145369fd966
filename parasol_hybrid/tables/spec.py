"""Table declarations: what a table is, independent of where its shards live."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import RuleError, TableError
from .kernels import INIT_KINDS
from .rules import get_rule

__all__ = ["TableSpec", "DTYPES"]

DTYPES = ("float32", "float64", "int64")


@dataclass(frozen=True)
class TableSpec:
    """A dense table of ``rows × dim`` values striped over ``nshards`` shards.

    ``init`` is ``zeros``, ``constant`` (value ``a``), ``uniform`` (on ``[a, b)``)
    or ``normal`` (mean ``a``, std ``b``), drawn from ``seed`` so that the values
    do not depend on the number of shards. ``rule`` is the default update rule
    (it decides how many optimiser-state slots each row gets). ``exact`` pushes
    hold the shard locks (always so for integer tables).
    """

    index: int
    name: str
    rows: int
    dim: int
    dtype: str
    init: str
    a: float
    b: float
    seed: int
    rule: str
    state_slots: int
    exact: bool
    nshards: int
    hyper: tuple = ()

    @classmethod
    def build(cls, index, name, shape, dtype="float32", init="zeros", a=0.0, b=1.0, seed=0,
              rule="add", exact=None, nshards=1, hyper=None) -> "TableSpec":
        """Validate a declaration and return its spec; errors name the table and the argument."""
        if not isinstance(name, str) or not name:
            raise TableError(f"table name must be a non-empty string, got {name!r}")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape), 1)
        try:
            rows, dim = (int(x) for x in shape)
        except (TypeError, ValueError):
            raise TableError(f"table {name!r}: shape must be (rows, dim), got {shape!r}") from None
        if rows < 1 or dim < 1:
            raise TableError(f"table {name!r}: shape {shape!r} must have rows >= 1 and dim >= 1")
        dtype = np.dtype(dtype).name
        if dtype not in DTYPES:
            raise TableError(f"table {name!r}: dtype {dtype} is not supported (use one of {', '.join(DTYPES)})")
        if init not in INIT_KINDS:
            raise TableError(f"table {name!r}: unknown init {init!r} (known: {', '.join(INIT_KINDS)})")
        if dtype == "int64" and init in ("uniform", "normal"):
            raise TableError(f"table {name!r}: init {init!r} needs a float dtype, not int64")
        try:
            r = get_rule(rule)
            r.hyper_array(hyper)  # unknown hyper-parameter names raise here
        except RuleError as exc:
            raise TableError(f"table {name!r}: {exc}") from None
        if dtype not in r.dtypes:
            raise TableError(f"table {name!r}: rule {rule!r} does not apply to {dtype} tables")
        is_int = dtype == "int64"
        exact = is_int if exact is None else bool(exact) or is_int
        hyper = tuple(sorted((str(k), float(v)) for k, v in (hyper or {}).items()))
        return cls(int(index), name, rows, dim, dtype, init, float(a), float(b), int(seed), rule,
                   r.state_slots, exact, int(nshards), hyper)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.dim)

    def as_dict(self) -> dict:
        return asdict(self)
