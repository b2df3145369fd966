"""The transport in one process: the wire format (round trip, zero copy, fuzzing) and CURVE authentication.

No MPI and no job here: ``encode``/``decode`` are fed generated and mutated frame lists, and a
CURVE ROUTER made with ``secure_server`` and the job's ZAP authenticator is reached over loopback
by a client with the job's keys, by one with other keys and by a plain (NULL) client.
"""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parasol_hybrid.transport.security import (
    JobKeys,
    secure_client,
    secure_server,
    start_authenticator,
)
from parasol_hybrid.transport.wire import (
    DTYPES,
    HEADER,
    LAYOUT,
    MAGIC,
    Message,
    Op,
    WireError,
    decode,
    encode,
)

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALUE_DTYPES = [dt for dt in DTYPES.values() if dt is not None]
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)


def as_bytes(frames: list) -> list[bytes]:
    """The frames as they arrive off a socket: independent ``bytes`` objects."""
    return [bytes(f) for f in frames]


def array_of(draw, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """Random values of ``dtype`` (any bit pattern for the floats, NaNs included)."""
    raw = draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize,
                         max_size=int(np.prod(shape)) * dtype.itemsize))
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


@st.composite
def messages(draw, ops=tuple(LAYOUT)):
    """(op, fields for ``encode``) of a valid message; counts include 0."""
    op = draw(st.sampled_from(ops))
    has_keys, has_values, has_extra = LAYOUT[op]
    count = draw(st.integers(0, 40))
    fields = {"table": draw(U32), "shard": draw(U32), "reqid": draw(U64), "clock": draw(I64)}
    if has_keys:
        fields["keys"] = np.array(draw(st.lists(I64, min_size=count, max_size=count)), dtype=np.int64)
    if has_values:
        dtype = draw(st.sampled_from(VALUE_DTYPES))
        dim = draw(st.integers(1, 6))
        values = array_of(draw, dtype, (count, dim))
        if dim == 1 and draw(st.booleans()):
            values = values.reshape(-1)  # 1-D values travel as one column
        fields["values"] = values
    if has_extra:
        fields["extra"] = draw(st.binary(max_size=4096))
    return op, fields


def same_array(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal dtype, shape and bits (NaNs compare by bit pattern)."""
    return got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


# ----------------------------------------------------------------- round trip


@FUZZ
@given(messages())
def test_round_trip_every_op(msg):
    op, fields = msg
    frames = encode(op, **fields)
    has_keys, has_values, has_extra = LAYOUT[op]
    assert len(frames) == 1 + has_keys + has_values + has_extra
    assert len(frames[0]) == HEADER.size

    received = as_bytes(frames)
    got = decode(received)
    assert isinstance(got, Message)
    assert (got.op, got.table, got.shard, got.reqid, got.clock) == (
        op, fields["table"], fields["shard"], fields["reqid"], fields["clock"])
    assert got.name == Op.NAMES[op]
    i = 1
    if has_keys:
        want = fields["keys"]
        assert same_array(got.keys, want)
        assert got.count == want.shape[0]
        if want.size:
            # a view of the received frame, not a copy, and read-only
            assert np.shares_memory(got.keys, np.frombuffer(received[i], np.uint8))
            assert not got.keys.flags.writeable
        i += 1
    else:
        assert got.keys is None
    if has_values:
        want = fields["values"]
        want2 = want.reshape(-1, 1) if want.ndim == 1 else want
        assert same_array(got.values, want2)
        assert got.dtype == want.dtype and got.dim == want2.shape[1]
        if want.size:
            assert np.shares_memory(got.values, np.frombuffer(received[i], np.uint8))
            assert not got.values.flags.writeable
        i += 1
    else:
        assert got.values is None and got.dtype is None and got.dim == 0
    if has_extra:
        assert got.extra == fields["extra"]
    else:
        assert got.extra == b""


@FUZZ
@given(messages(ops=[op for op, (k, v, _) in LAYOUT.items() if k or v]))
def test_encode_does_not_copy_and_decode_reads_the_sent_buffers(msg):
    """encode hands out buffers of the arrays (for ``copy=False`` sends); decode of those frames reads them in place."""
    op, fields = msg
    keys, values = fields.get("keys"), fields.get("values")
    frames = encode(op, **fields)
    got = decode(frames)
    if keys is not None and keys.size:
        assert np.shares_memory(got.keys, keys)
    if values is not None and values.size:
        assert np.shares_memory(got.values, values)


def test_round_trip_through_zmq_frames_is_zero_copy():
    """Frames received with ``copy=False`` are decoded as views of the zmq buffers."""
    keys = np.arange(1000, dtype=np.int64) * 7
    values = np.arange(3000, dtype=np.float64).reshape(1000, 3)
    ctx = zmq.Context()
    a = ctx.socket(zmq.PAIR)
    b = ctx.socket(zmq.PAIR)
    try:
        for s in (a, b):
            s.linger = 0
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        b.send_multipart(encode(Op.ITEMS, 3, 1, 99, -5, keys=keys, values=values), copy=False)
        assert a.poll(5000), "the message did not arrive"
        frames = a.recv_multipart(copy=False)
        got = decode(frames)
        assert (got.op, got.table, got.shard, got.reqid, got.clock) == (Op.ITEMS, 3, 1, 99, -5)
        assert np.array_equal(got.keys, keys) and np.array_equal(got.values, values)
        assert np.shares_memory(got.keys, np.frombuffer(frames[1].buffer, np.uint8))
        assert np.shares_memory(got.values, np.frombuffer(frames[2].buffer, np.uint8))
        assert not got.keys.flags.owndata and not got.values.flags.owndata
        del got
    finally:
        a.close(linger=0)
        b.close(linger=0)
        ctx.term()


def test_zero_length_arrays_round_trip():
    for op, (has_keys, has_values, _) in LAYOUT.items():
        fields = {}
        if has_keys:
            fields["keys"] = np.zeros(0, np.int64)
        if has_values:
            fields["values"] = np.zeros((0, 4), np.float32)
        got = decode(as_bytes(encode(op, **fields)))
        if has_keys:
            assert got.keys.shape == (0,) and got.keys.dtype == np.int64
        if has_values:
            assert got.values.shape == (0, 4) and got.values.dtype == np.float32 and got.dim == 4
        assert got.count == 0


# ----------------------------------------------------------------- fuzzing decode


def decode_fails_cleanly(frames) -> bool:
    """True if decode raised WireError, False if it accepted; any other exception propagates (a failure)."""
    try:
        msg = decode(frames)
    except WireError:
        return True
    # an accepted message must be self-consistent
    has_keys, has_values, _ = LAYOUT[msg.op]
    assert (msg.keys is not None) == has_keys and (msg.values is not None) == has_values
    if has_keys and has_values:
        assert msg.keys.shape[0] == msg.values.shape[0]
    if has_values:
        assert msg.values.ndim == 2 and msg.values.shape[1] == msg.dim >= 1
    return False


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_decode_random_frames_only_raises_wire_error(frames):
    decode_fails_cleanly(frames)


@st.composite
def plausible_headers(draw):
    """Frames behind a header with the right magic and random fields, so the checks past the magic get fuzzed."""
    op = draw(st.one_of(st.sampled_from(list(LAYOUT)), st.integers(0, 255)))
    dtype_code = draw(st.one_of(st.sampled_from(list(DTYPES)), st.integers(0, 255)))
    flags = draw(st.sampled_from([0, 0, 0, 1, 0x8000]))
    count = draw(st.one_of(st.integers(0, 8), st.integers(0, 2**64 - 1)))
    dim = draw(st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1)))
    head = HEADER.pack(MAGIC, op, dtype_code, flags, draw(U32), draw(U32), draw(U64), draw(I64), count, dim)
    rest = draw(st.lists(st.binary(max_size=100), max_size=4))
    return [head, *rest]


@FUZZ
@given(plausible_headers())
def test_decode_plausible_headers_only_raises_wire_error(frames):
    decode_fails_cleanly(frames)


# header field offsets: magic 0-3, op 4, dtype 5, flags 6-7, table 8-11, shard 12-15, reqid 16-23,
# clock 24-31, count 32-39, dim 40-43
def set_field(head: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(head)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


MUTATIONS = ("flip", "truncate", "extend", "drop", "add", "dtype", "count", "huge_count", "huge_dim", "op", "empty")


@st.composite
def mutated(draw):
    op, fields = draw(messages())
    frames = as_bytes(encode(op, **fields))
    kind = draw(st.sampled_from(MUTATIONS))
    if kind == "flip":
        b = bytearray(frames[0])
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(b) - 1))
            b[pos] ^= draw(st.integers(1, 255))
        frames[0] = bytes(b)
    elif kind == "truncate":
        i = draw(st.integers(0, len(frames) - 1))
        cut = draw(st.integers(1, max(1, len(frames[i]))))
        frames[i] = frames[i][:-cut] if frames[i] else b""
    elif kind == "extend":
        i = draw(st.integers(0, len(frames) - 1))
        frames[i] = frames[i] + draw(st.binary(min_size=1, max_size=24))
    elif kind == "drop":
        del frames[draw(st.integers(0, len(frames) - 1))]
    elif kind == "add":
        frames.insert(draw(st.integers(0, len(frames))), draw(st.binary(max_size=64)))
    elif kind == "dtype":
        frames[0] = set_field(frames[0], 5, "<B", draw(st.integers(0, 255)))
    elif kind == "count":
        frames[0] = set_field(frames[0], 32, "<Q", draw(st.integers(0, 64)))
    elif kind == "huge_count":
        frames[0] = set_field(frames[0], 32, "<Q", draw(st.integers(2**26, 2**64 - 1)))
    elif kind == "huge_dim":
        frames[0] = set_field(frames[0], 40, "<I", draw(st.integers(2**16, 2**32 - 1)))
    elif kind == "op":
        frames[0] = set_field(frames[0], 4, "<B", draw(st.integers(0, 255)))
    elif kind == "empty":
        frames = []
    return kind, frames


@FUZZ
@given(mutated())
def test_decode_mutated_messages_only_raises_wire_error(case):
    _, frames = case
    decode_fails_cleanly(frames)


@pytest.mark.parametrize("frames, what", [
    ([], "empty"),
    ([b"PSH1"], "header is 4 bytes"),
    ([HEADER.pack(b"XXXX", Op.ACK, 0, 0, 0, 0, 0, 0, 0, 0)], "magic"),
    ([HEADER.pack(MAGIC, 0, 0, 0, 0, 0, 0, 0, 0, 0)], "unknown operation"),
    ([HEADER.pack(MAGIC, 200, 0, 0, 0, 0, 0, 0, 0, 0)], "unknown operation"),
    ([HEADER.pack(MAGIC, Op.ACK, 0, 1, 0, 0, 0, 0, 0, 0)], "flags"),
    ([HEADER.pack(MAGIC, Op.VALUES, 9, 0, 0, 0, 0, 0, 1, 1), b"\0" * 4], "dtype"),
    ([HEADER.pack(MAGIC, Op.VALUES, 0, 0, 0, 0, 0, 0, 1, 1), b"\0" * 4], "dtype"),
    ([HEADER.pack(MAGIC, Op.PULL, 0, 0, 0, 0, 0, 0, 2**64 - 1, 0), b""], "count"),
    ([HEADER.pack(MAGIC, Op.VALUES, 1, 0, 0, 0, 0, 0, 1, 2**32 - 1), b"\0" * 4], "dim"),
    ([HEADER.pack(MAGIC, Op.VALUES, 1, 0, 0, 0, 0, 0, 1, 0), b""], "dim"),
    ([HEADER.pack(MAGIC, Op.PULL, 0, 0, 0, 0, 0, 0, 2, 0), b"\0" * 8], "keys frame"),
    ([HEADER.pack(MAGIC, Op.PULL, 0, 0, 0, 0, 0, 0, 1, 0)], "frames"),
    ([HEADER.pack(MAGIC, Op.PULL, 1, 0, 0, 0, 0, 0, 1, 1), b"\0" * 8], "carries no values"),
    ([HEADER.pack(MAGIC, Op.PUSH_ADD, 1, 0, 0, 0, 0, 0, 1, 2), b"\0" * 8, b"\0" * 4], "values frame"),
    ([HEADER.pack(MAGIC, Op.ERROR, 0, 0, 0, 0, 0, 0, 0, 0), b"x" * 5000], "extra"),
])
def test_decode_names_what_is_wrong(frames, what):
    with pytest.raises(WireError, match=what):
        decode(frames)


# ----------------------------------------------------------------- CURVE


@pytest.fixture
def curve_server():
    """A CURVE ROUTER of a job (with its ZAP authenticator) on a random loopback port: (ctx, keys, sock, auth, endpoint)."""
    ctx = zmq.Context()
    keys = JobKeys.generate()
    auth = start_authenticator(ctx, keys)
    sock = secure_server(ctx.socket(zmq.ROUTER), keys)
    sock.linger = 0
    try:
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        yield ctx, keys, sock, auth, f"tcp://127.0.0.1:{port}"
    finally:
        sock.close(linger=0)
        auth.stop()
        ctx.term()


@contextlib.contextmanager
def dealer(ctx: zmq.Context, endpoint: str, keys: JobKeys | None):
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    try:
        if keys is not None:
            secure_client(sock, keys)
        sock.connect(endpoint)
        yield sock
    finally:
        sock.close(linger=0)


def arrives(server: zmq.Socket, timeout_ms: int) -> list | None:
    return server.recv_multipart() if server.poll(timeout_ms) else None


def test_curve_job_client_is_accepted_and_answered(curve_server):
    ctx, keys, server, auth, endpoint = curve_server
    with dealer(ctx, endpoint, keys) as client:
        client.send_multipart([b"", b"hello"])
        got = arrives(server, 5000)
        assert got is not None and got[1:] == [b"", b"hello"]
        server.send_multipart([got[0], b"", b"welcome"])
        assert client.poll(5000)
        assert client.recv_multipart() == [b"", b"welcome"]
    assert auth.provider.refused == 0


def test_curve_client_with_another_client_key_is_refused(curve_server):
    """Right server key (the handshake reaches ZAP), but a client key that is not the job's: refused and counted."""
    ctx, keys, server, auth, endpoint = curve_server
    other = JobKeys.generate()
    intruder = JobKeys(keys.server_public, b"", other.client_public, other.client_secret)
    with dealer(ctx, endpoint, intruder) as client:
        client.send_multipart([b"", b"let me in"])
        assert arrives(server, 1000) is None
    assert auth.provider.refused >= 1
    # the job's client still gets through afterwards
    with dealer(ctx, endpoint, keys) as client:
        client.send_multipart([b"", b"hello"])
        assert arrives(server, 5000) is not None


def test_curve_client_with_other_job_keys_is_refused(curve_server):
    """Another job's keys (wrong server key too): the handshake fails, nothing arrives."""
    ctx, _, server, _, endpoint = curve_server
    with dealer(ctx, endpoint, JobKeys.generate()) as client:
        client.send_multipart([b"", b"let me in"])
        assert arrives(server, 1000) is None


def test_plain_client_is_refused(curve_server):
    ctx, _, server, _, endpoint = curve_server
    with dealer(ctx, endpoint, None) as client:
        client.send_multipart([b"", b"let me in"])
        assert arrives(server, 1000) is None
    # a plain client in a separate context (another process, as far as the server can tell)
    other_ctx = zmq.Context()
    try:
        with dealer(other_ctx, endpoint, None) as client:
            client.send_multipart([b"", b"let me in"])
            assert arrives(server, 1000) is None
    finally:
        other_ctx.term()


def test_curve_traffic_is_encrypted(curve_server):
    """A raw TCP peer sees no plaintext: the server greets with the CURVE mechanism, never NULL."""
    import socket

    _, _, _, _, endpoint = curve_server
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    greeting = b""
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        # speak first half of a ZMTP 3 greeting (signature, major version 3) and read the server's greeting
        raw.sendall(b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03")
        with contextlib.suppress(OSError):
            while len(greeting) < 64:
                chunk = raw.recv(64 - len(greeting))
                if not chunk:
                    break
                greeting += chunk
    assert len(greeting) >= 32, f"no ZMTP greeting from the server: {greeting!r}"
    assert greeting[12:17] == b"CURVE", f"the server does not speak CURVE: {greeting[:64]!r}"
