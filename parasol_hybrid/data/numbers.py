"""Decimal numbers read by compiled code, bit for bit as Python's ``float()`` reads them, or left to Python.

A value is computed in a kernel only where that is exact: an integer mantissa below 2^53 (15 digits for
:func:`parse_number`) and a decimal exponent within ±22, so one IEEE multiply or divide by an exact power
of ten (:data:`POW10`) gives the correctly rounded result, the one ``float()`` gives. Anything else is the
caller's to hand to Python.

- :func:`parse_number` (the ratings scanner's weights): ``(ok, value)`` of a field whose bounds are known.
- :func:`decimal_field` (the libsvm scanner's labels and values): parses from a start to the end of the
  field, and tells a plain decimal that is finite but not exact in the kernel (``PENDING``: the caller
  converts its text with ``float()``, in batches) from anything it does not understand (``UNSURE``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from parasol_hybrid.data.bytescan import NEWLINE, WHITESPACE

__all__ = ["POW10", "parse_number", "decimal_field", "field_ends", "EXACT", "PENDING", "UNSURE"]

POW10 = np.array([10.0 ** j for j in range(23)], dtype=np.float64)  #: exact: 10^22 < 2^53 * 2^22
assert all(float(10 ** j) == POW10[j] for j in range(23))

# the kinds decimal_field returns
EXACT = 0  #: value computed exactly in the kernel
PENDING = 1  #: a plain decimal, finite, but not exact in the kernel: Python float() converts it
UNSURE = 2  #: anything else (odd spelling, maybe infinite, field not ended): the line goes to Python

_HASH = 35
_MANTISSA_LIMIT = 1 << 53
_KEEP_DIGITS = 10 ** 17  # stop accumulating mantissa digits from here (no int64 overflow)
_EXP_CAP = 100_000
_FINITE_MAGNITUDE = 300  # a decimal below 10^300 is finite


@njit(cache=True, nogil=True)
def parse_number(data, start, end, pow10):
    """``(ok, value)``: the float that Python's ``float()`` gives for ``data[start:end]``, when this fast
    path can promise it bit for bit (then ``ok`` is 1); ``ok`` 0 means "ask Python"."""
    if end - start <= 15:  # plain digits, the common case
        v = 0
        j = start
        while j < end:
            c = data[j]
            if c < 48 or c > 57:
                break
            v = v * 10 + (c - 48)
            j += 1
        if j == end and end > start:
            return 1, float(v)
    j = start
    neg = False
    if j < end and (data[j] == 43 or data[j] == 45):
        neg = data[j] == 45
        j += 1
    mant = np.int64(0)
    digits = 0  # significant digits taken into mant
    any_digit = False
    point = False  # the decimal point has been passed
    scale = 0  # decimal exponent of mant's last digit
    while j < end:
        c = data[j]
        if c == 46 and not point:
            point = True
            j += 1
            continue
        if c < 48 or c > 57:
            break
        any_digit = True
        if mant > 0 or c != 48:
            if digits >= 15:
                return 0, 0.0
            mant = mant * 10 + (c - 48)
            digits += 1
        if point:
            scale -= 1
        j += 1
    if not any_digit:
        return 0, 0.0
    if j < end and (data[j] == 101 or data[j] == 69):
        j += 1
        eneg = False
        if j < end and (data[j] == 43 or data[j] == 45):
            eneg = data[j] == 45
            j += 1
        if j >= end:
            return 0, 0.0
        e = 0
        while j < end and 48 <= data[j] <= 57:
            if e < 10000:
                e = e * 10 + (data[j] - 48)
            j += 1
        scale += -e if eneg else e
    if j != end:
        return 0, 0.0
    value = float(mant)
    if mant != 0:
        if 0 <= scale <= 22:
            value = value * pow10[scale]
        elif -22 <= scale < 0:
            value = value / pow10[-scale]
        else:
            return 0, 0.0
    return 1, -value if neg else value


@njit(cache=True, nogil=True)
def field_ends(data, i, n):
    """True when position ``i`` ends a libsvm field: end of data, newline, whitespace or ``#``."""
    if i >= n:
        return True
    c = data[i]
    return c == NEWLINE or c == _HASH or WHITESPACE[c] == 1


@njit(cache=True, nogil=True)
def decimal_field(data, i, n):
    """Parse the decimal number that starts at ``data[i]`` and must end the field (:func:`field_ends`).

    Returns ``(kind, value, end)``: kind ``EXACT`` with the exact float64 value, ``PENDING`` (a plain
    decimal whose value is finite but needs a correctly rounded conversion), or ``UNSURE``.
    """
    neg = False
    c = data[i] if i < n else 0
    if c == 43 or c == 45:  # + -
        neg = c == 45
        i += 1
    m = 0  # accumulated significant digits
    scale = 0  # value = m * 10^(scale + exponent) (plus dropped digits)
    mdigits = 0  # digits in m (leading zeros excluded)
    dropped = False  # a non-zero digit not accumulated into m
    ndigits = 0
    while i < n and 48 <= data[i] <= 57:
        d = data[i] - 48
        ndigits += 1
        if m < _KEEP_DIGITS:
            m = m * 10 + d
            if m > 0:
                mdigits += 1
        else:
            scale += 1
            if d != 0:
                dropped = True
        i += 1
    if i < n and data[i] == 46:  # .
        i += 1
        while i < n and 48 <= data[i] <= 57:
            d = data[i] - 48
            ndigits += 1
            if m < _KEEP_DIGITS:
                m = m * 10 + d
                scale -= 1
                if m > 0:
                    mdigits += 1
            elif d != 0:
                dropped = True
            i += 1
    if ndigits == 0:
        return UNSURE, 0.0, i
    exponent = 0
    if i < n and (data[i] == 101 or data[i] == 69):  # e E
        i += 1
        eneg = False
        if i < n and (data[i] == 43 or data[i] == 45):
            eneg = data[i] == 45
            i += 1
        edigits = 0
        while i < n and 48 <= data[i] <= 57:
            if exponent < _EXP_CAP:
                exponent = exponent * 10 + (data[i] - 48)
            edigits += 1
            i += 1
        if edigits == 0:
            return UNSURE, 0.0, i
        if eneg:
            exponent = -exponent
    if not field_ends(data, i, n):
        return UNSURE, 0.0, i
    if m == 0 and not dropped:
        return EXACT, -0.0 if neg else 0.0, i
    power = scale + exponent
    if not dropped and m < _MANTISSA_LIMIT and -22 <= power <= 22:
        value = float(m)
        if power >= 0:
            value = value * POW10[power]
        else:
            value = value / POW10[-power]
        return EXACT, -value if neg else value, i
    if mdigits + power <= _FINITE_MAGNITUDE and exponent < _EXP_CAP and exponent > -_EXP_CAP:
        return PENDING, 0.0, i
    return UNSURE, 0.0, i
