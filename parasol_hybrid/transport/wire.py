"""The wire format of cross-node messages: a fixed header frame, then raw key and value frames.

A message is a list of ZeroMQ frames::

    [header (44 bytes), keys (count × int64), values (count × dim × dtype), extra]

The header packs ``magic op dtype flags table shard reqid clock count dim``
(little-endian). Keys and values travel as raw numpy buffers, sent with
``copy=False`` and read back with ``np.frombuffer`` (no copies). Which frames
an operation carries is fixed by :data:`LAYOUT`; :func:`decode` checks the
header, the operation, the frame count and every frame's size before anything
is used, and raises :class:`WireError` naming what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["Op", "Message", "WireError", "encode", "decode", "HEADER", "DTYPES", "LAYOUT"]

MAGIC = b"PSH1"
HEADER = struct.Struct("<4sBBHIIQqQI")

#: dtype codes on the wire
DTYPES = {0: None, 1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int64)}
_CODES = {dt.name: code for code, dt in DTYPES.items() if dt is not None}

MAX_COUNT = 1 << 26   # keys per message
MAX_DIM = 1 << 16
MAX_EXTRA = 4096


class Op:
    """Operation codes."""

    PUSH_ADD = 1      # keys, values      -> ACK      add values to rows of a dense shard
    PUSH_RULE = 2     # keys, values, rule name -> VALUES  apply a registered rule on the owner; the rows after it
    PULL = 3          # keys              -> VALUES   rows of a dense shard
    PULL_SHARD = 4    # -                 -> VALUES   the whole shard
    SPARSE_PUSH = 5   # keys, values      -> ACK      insert-and-add into a sparse shard
    SPARSE_PULL = 6   # keys              -> VALUES
    SPARSE_ITEMS = 7  # -                 -> ITEMS    every key and row of a sparse shard
    NODE_CLOCK = 8    # -                 (no reply)  node ``table`` finished clock ``clock``
    WORKER_CLOCK = 9  # -                 (no reply)  worker ``table`` finished clock ``clock``
    ACK = 20
    VALUES = 21       # values
    ITEMS = 22        # keys, values
    ERROR = 23        # extra = utf-8 message

    NAMES = {1: "PUSH_ADD", 2: "PUSH_RULE", 3: "PULL", 4: "PULL_SHARD", 5: "SPARSE_PUSH", 6: "SPARSE_PULL",
             7: "SPARSE_ITEMS", 8: "NODE_CLOCK", 9: "WORKER_CLOCK", 20: "ACK", 21: "VALUES", 22: "ITEMS",
             23: "ERROR"}


#: op -> (has keys, has values, has extra)
LAYOUT = {
    Op.PUSH_ADD: (True, True, False),
    Op.PUSH_RULE: (True, True, True),
    Op.PULL: (True, False, False),
    Op.PULL_SHARD: (False, False, False),
    Op.SPARSE_PUSH: (True, True, False),
    Op.SPARSE_PULL: (True, False, False),
    Op.SPARSE_ITEMS: (False, False, False),
    Op.NODE_CLOCK: (False, False, False),
    Op.WORKER_CLOCK: (False, False, False),
    Op.ACK: (False, False, False),
    Op.VALUES: (False, True, False),
    Op.ITEMS: (True, True, False),
    Op.ERROR: (False, False, True),
}


class WireError(ValueError):
    """A message that does not follow the wire format (the text says which part)."""


@dataclass
class Message:
    """A decoded message; ``keys`` and ``values`` are read-only views of the received frames."""

    op: int
    table: int = 0
    shard: int = 0
    reqid: int = 0
    clock: int = 0
    dtype: np.dtype | None = None
    dim: int = 0
    keys: np.ndarray | None = None
    values: np.ndarray | None = None
    extra: bytes = b""

    @property
    def count(self) -> int:
        if self.keys is not None:
            return int(self.keys.shape[0])
        if self.values is not None:
            return int(self.values.shape[0])
        return 0

    @property
    def name(self) -> str:
        return Op.NAMES.get(self.op, str(self.op))


def encode(op: int, table: int = 0, shard: int = 0, reqid: int = 0, clock: int = 0,
           keys: np.ndarray | None = None, values: np.ndarray | None = None, extra: bytes = b"") -> list:
    """Frames of a message; key and value arrays are passed as buffers (send with ``copy=False``)."""
    has_keys, has_values, has_extra = LAYOUT[op]
    dtype_code, dim, count = 0, 0, 0
    frames: list = [None]
    if has_keys:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        count = keys.shape[0]
        frames.append(memoryview(keys).cast("B"))
    if has_values:
        values = np.ascontiguousarray(values)
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        if values.dtype.name not in _CODES or values.ndim != 2:
            raise WireError(f"values must be 1-D or 2-D float32, float64 or int64, got {values.dtype} {values.shape}")
        dtype_code = _CODES[values.dtype.name]
        dim = values.shape[1]
        if not 1 <= dim <= MAX_DIM:
            raise WireError(f"dim {dim} out of range 1..{MAX_DIM}")
        if has_keys and values.shape[0] != count:
            raise WireError(f"{values.shape[0]} value rows for {count} keys")
        count = values.shape[0]
        frames.append(memoryview(values.reshape(-1)).cast("B") if values.size else b"")
    if has_extra:
        if len(extra) > MAX_EXTRA:
            raise WireError(f"extra frame is {len(extra)} bytes, over {MAX_EXTRA}")
        frames.append(bytes(extra))
    frames[0] = HEADER.pack(MAGIC, op, dtype_code, 0, table, shard, reqid, clock, count, dim)
    return frames


def _buffer(frame) -> memoryview:
    return frame.buffer if hasattr(frame, "buffer") else memoryview(frame)


def decode(frames: list) -> Message:
    """Check and decode received frames (bytes or ``zmq.Frame``); raises WireError."""
    if not frames:
        raise WireError("empty message")
    head = _buffer(frames[0])
    if head.nbytes != HEADER.size:
        raise WireError(f"header is {head.nbytes} bytes, expected {HEADER.size}")
    magic, op, dtype_code, flags, table, shard, reqid, clock, count, dim = HEADER.unpack(head)
    if magic != MAGIC:
        raise WireError(f"bad magic {bytes(magic)!r}")
    if op not in LAYOUT:
        raise WireError(f"unknown operation {op}")
    if flags != 0:
        raise WireError(f"unknown flags {flags:#x}")
    if dtype_code not in DTYPES:
        raise WireError(f"unknown dtype code {dtype_code}")
    if count > MAX_COUNT:
        raise WireError(f"count {count} is over the limit {MAX_COUNT}")
    has_keys, has_values, has_extra = LAYOUT[op]
    expected = 1 + has_keys + has_values + has_extra
    if len(frames) != expected:
        raise WireError(f"{Op.NAMES[op]} needs {expected} frames, got {len(frames)}")
    msg = Message(op, table, shard, reqid, clock)
    i = 1
    if has_keys:
        buf = _buffer(frames[i])
        if buf.nbytes != count * 8:
            raise WireError(f"keys frame is {buf.nbytes} bytes, expected {count} × 8")
        msg.keys = np.frombuffer(buf, dtype=np.int64) if count else np.zeros(0, np.int64)
        i += 1
    if has_values:
        dtype = DTYPES[dtype_code]
        if dtype is None:
            raise WireError(f"{Op.NAMES[op]} needs a dtype")
        if not 1 <= dim <= MAX_DIM:
            raise WireError(f"dim {dim} out of range 1..{MAX_DIM}")
        buf = _buffer(frames[i])
        if buf.nbytes != count * dim * dtype.itemsize:
            raise WireError(f"values frame is {buf.nbytes} bytes, expected {count} × {dim} × {dtype.itemsize}")
        msg.values = np.frombuffer(buf, dtype=dtype).reshape(count, dim) if count else np.zeros((0, dim), dtype)
        msg.dtype, msg.dim = dtype, dim
        i += 1
    elif dtype_code != 0 or dim != 0:
        raise WireError(f"{Op.NAMES[op]} carries no values but names dtype {dtype_code} / dim {dim}")
    if not has_keys and not has_values and count != 0:
        raise WireError(f"{Op.NAMES[op]} carries no keys or values but has count {count}")
    if has_extra:
        msg.extra = bytes(_buffer(frames[i]))
        if len(msg.extra) > MAX_EXTRA:
            raise WireError(f"extra frame is {len(msg.extra)} bytes, over {MAX_EXTRA}")
    return msg
