"""Test job (2 simulated nodes): hostile and malformed traffic to the server on the other node.

Both workers declare a float32 and an int64 table and push known values (round 1). Worker 0
(node 0) then talks to server 1 (node 1) over its NodeLink socket (the job's CURVE keys, so the
server reads everything it sends) and sends the messages of one ``suite``:

``garbage``   random frames, mutated valid messages, well-formed requests that name keys out of
              range or in another shard, the wrong dtype or dim, an unknown table, op or rule,
              truncated frames, JSON control requests with an unknown op or a bad spec;
``reply_ops`` reply operations (ACK, VALUES, ERROR, ITEMS) sent as requests;
``bad_specs`` control requests with table specs that pass JSON but not the spec's rules,
              ``cache`` requests for caches that exist or tables that do not, a ``create`` that
              resumes from a missing checkpoint and ``save`` requests to folders that cannot be written;
``outsiders`` clients without the job's keys (no CURVE, another job's keys, a foreign client key)
              send valid requests to every server's endpoint.

After each suite worker 0 checks that valid requests still work, then both workers push known
values again (round 2) and clock, and every worker reads both tables whole. Worker 0 writes
``<output>/sec.json``: per case how many messages were sent and how the server answered, and the
checks. Before each message it appends the case name to ``<output>/sec_progress.txt`` so that, if a
server dies, the test can say which case killed it.
"""

from __future__ import annotations

import json
import struct
from typing import ClassVar

import numpy as np
import zmq

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.errors import ParasolError
from parasol_hybrid.transport.security import JobKeys, secure_client
from parasol_hybrid.transport.wire import HEADER, MAGIC, Op, WireError, decode, encode

F_ROWS, F_DIM = 40, 3
I_ROWS = 30
SUITES = ("garbage", "reply_ops", "bad_specs", "outsiders")
TARGET = 1            # the server attacked: server 1 is on node 1, worker 0 on node 0
REPLY_TIMEOUT = 3.0   # seconds a rejected request may take to be answered
OUTSIDER_WAIT = 1.5   # seconds an outsider waits for an answer that must not come
REQID0 = 1 << 40      # raw requests' ids, far from the NodeLink's own counter

# the direct, valid pushes worker 0 makes to server 1 after the suite (owner rows: odd keys)
DIRECT_F_KEYS = np.array([1, 5, 39], dtype=np.int64)
DIRECT_F_VALUES = np.array([[0.5, 1.0, 1.5], [2.0, 2.5, 3.0], [-1.0, -2.0, -4.0]], dtype=np.float32)
DIRECT_I_KEYS = np.array([3, 29], dtype=np.int64)
DIRECT_I_VALUES = np.array([[11], [-7]], dtype=np.int64)


def round_values(worker: int, rnd: int) -> tuple[np.ndarray, np.ndarray]:
    """The float32 (F_ROWS × F_DIM) and int64 (I_ROWS × 1) deltas ``worker`` pushes in round ``rnd`` (exact in float32)."""
    scale = (worker + 1) * (10 if rnd == 2 else 1)
    f = np.arange(F_ROWS * F_DIM, dtype=np.float32).reshape(F_ROWS, F_DIM) * np.float32(0.125) * scale
    i = (np.arange(I_ROWS, dtype=np.int64).reshape(I_ROWS, 1) + 1) * 1000 * scale + worker
    return f, i


def expected_tables(nworker: int, direct: bool) -> tuple[np.ndarray, np.ndarray]:
    f = np.zeros((F_ROWS, F_DIM), np.float32)
    i = np.zeros((I_ROWS, 1), np.int64)
    for rnd in (1, 2):
        for w in range(nworker):
            df, di = round_values(w, rnd)
            f += df
            i += di
    if direct:
        np.add.at(f, DIRECT_F_KEYS, DIRECT_F_VALUES)
        np.add.at(i, DIRECT_I_KEYS, DIRECT_I_VALUES)
    return f, i


def set_field(head: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``head`` with one header field replaced (offsets: op 4, dtype 5, flags 6, table 8, shard 12,
    reqid 16, clock 24, count 32, dim 40)."""
    b = bytearray(head)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)



def _rule(name: bytes) -> bytes:
    """The extra frame of a PUSH_RULE naming ``name`` (JSON, as the library sends it)."""
    return json.dumps({"rule": name.decode("latin-1"), "hyper": {}}).encode()

class Attacker:
    """Worker 0's raw channel to one server: send frames, classify the answer, tally per case."""

    def __init__(self, alg: SecFuzz, server: int):
        self.alg = alg
        self.server = server
        self.sock: zmq.Socket = alg._net._sock(server)
        self.cases: dict[str, dict] = {}
        self.skipped: dict[str, int] = {}
        self.progress = alg.output_path("sec_progress.txt")
        self.progress.write_text("")
        self._reqid = REQID0

    def reqid(self) -> int:
        self._reqid += 1
        return self._reqid

    def drain(self) -> int:
        n = 0
        while self.sock.poll(0):
            self.sock.recv_multipart()
            n += 1
        return n

    def exchange(self, frames: list, timeout: float = REPLY_TIMEOUT) -> tuple[str, str]:
        """Send ``[b"", *frames]``; return (kind, detail) with kind error / json_refused / json_ok / ok / none / bad_reply."""
        self.sock.send_multipart([b"", *[bytes(f) for f in frames]])
        if not self.sock.poll(int(timeout * 1000)):
            return "none", ""
        reply = self.sock.recv_multipart()
        if not reply or reply[0] != b"":
            return "bad_reply", repr(reply[:2])[:200]
        body = reply[1:]
        if len(body) == 1 and body[0][:1] == b"{":
            try:
                obj = json.loads(body[0])
            except ValueError:
                return "bad_reply", repr(body[0][:200])
            return ("json_ok" if obj.get("ok") else "json_refused"), str(obj)[:300]
        try:
            msg = decode(body)
        except WireError as exc:
            return "bad_reply", f"undecodable reply: {exc}"
        if msg.op == Op.ERROR:
            return "error", msg.extra.decode(errors="replace")[:300]
        return "ok", msg.name

    def send(self, case: str, frames: list, expect: str = "error", timeout: float = REPLY_TIMEOUT) -> str:
        """Send one message of ``case``; ``expect`` is ``error`` (ERROR or refused JSON), ``any`` or ``none``."""
        with self.progress.open("a") as f:
            f.write(case + "\n")
        kind, detail = self.exchange(frames, timeout)
        rec = self.cases.setdefault(case, {"sent": 0, "kinds": {}, "unexpected": [], "expect": expect, "errors": []})
        rec["sent"] += 1
        rec["kinds"][kind] = rec["kinds"].get(kind, 0) + 1
        good = {"error": kind in ("error", "json_refused"), "any": kind in ("error", "json_refused", "ok", "json_ok"),
                "none": kind == "none"}[expect]
        if not good and len(rec["unexpected"]) < 5:
            rec["unexpected"].append({"kind": kind, "detail": detail, "frames": [bytes(x)[:64].hex() for x in frames]})
        if kind in ("error", "json_refused") and len(rec["errors"]) < 3:
            rec["errors"].append(detail)
        if kind == "none":
            self.drain()
        return kind


class SecFuzz(paralg):
    options: ClassVar[dict] = {
        "suite": Option(str, "garbage", "which hostile traffic worker 0 sends", choices=SUITES),
        "random_messages": Option(int, 150, "random frame lists in the garbage suite"),
        "mutated_messages": Option(int, 200, "mutated valid messages in the garbage suite"),
    }

    def solve(self) -> None:
        rt = self._rt
        f = self.table("sec_f", (F_ROWS, F_DIM), "float32")
        i = self.table("sec_i", (I_ROWS, 1), "int64")
        self.tf, self.ti = f.spec.index, i.spec.index
        df, di = round_values(self.worker_id, 1)
        self.push(f, np.arange(F_ROWS), df)
        self.push(i, np.arange(I_ROWS), di)
        self.clock()
        self.sync()

        result: dict = {"suite": self.cfg.suite, "nnodes": self.nnodes, "checks": {}}
        direct = False
        if self.is_master:
            layout = rt.layout
            result["worker_node"] = rt.node
            result["target_node"] = layout.node_of[layout.servers[TARGET]]
            result["target_is_remote"] = self._net is not None and self._net._remote(TARGET)
            result["endpoints"] = list(rt.endpoints)
            att = Attacker(self, TARGET)
            result["checks"]["before"] = self.check_server(att, direct=False)
            getattr(self, "suite_" + self.cfg.suite)(att)
            result["drained_after_suite"] = att.drain()
            result["checks"]["after"] = self.check_server(att, direct=False)
            result["checks"]["direct"] = self.direct_pushes()
            direct = result["checks"]["direct"]["ok"]
            result["cases"] = att.cases
            result["skipped"] = att.skipped
            if self.cfg.suite == "outsiders":
                result["outsiders"] = self.outsiders
        direct = bool(self.allgather(direct)[0])

        # round 2: the job still works; then every worker reads both tables whole
        df, di = round_values(self.worker_id, 2)
        self.push(f, np.arange(F_ROWS), df)
        self.push(i, np.arange(I_ROWS), di)
        self.clock()
        self.sync()
        seen = self.allgather((self.pull_all(f).tolist(), self.pull_all(i).tolist()))
        if self.is_master:
            ef, ei = expected_tables(self.nworker, direct)
            result["checks"]["final"] = [{"worker": w, "float_ok": bool(np.array_equal(np.array(sf, np.float32), ef)),
                                          "int_ok": bool(np.array_equal(np.array(si, np.int64), ei)),
                                          "float_diff_rows": np.nonzero((np.array(sf, np.float32) != ef).any(1))[0].tolist(),
                                          "int_diff_rows": np.nonzero((np.array(si, np.int64) != ei).any(1))[0].tolist()}
                                         for w, (sf, si) in enumerate(seen)]
            self.write_json("sec.json", result)
        self.sync()

    # ------------------------------------------------------------ checks
    def check_server(self, att: Attacker, direct: bool) -> dict:
        """Server 1 answers a ping, a valid PULL of its rows and of its whole shard, with the round-1 values."""
        att.drain()
        out: dict = {}
        kind, _ = att.exchange([json.dumps({"op": "ping"}).encode()])
        out["ping"] = kind == "json_ok"
        ef = sum(round_values(w, 1)[0] for w in range(self.nworker))
        ei = sum(round_values(w, 1)[1] for w in range(self.nworker))
        odd_f, odd_i = np.arange(1, F_ROWS, 2), np.arange(1, I_ROWS, 2)
        try:
            got_f = self._net.request(TARGET, Op.PULL, table=self.tf, shard=TARGET, keys=odd_f).values
            got_i = self._net.request(TARGET, Op.PULL, table=self.ti, shard=TARGET, keys=odd_i).values
            whole = self._net.request(TARGET, Op.PULL_SHARD, table=self.tf, shard=TARGET).values
            out["pull"] = bool(np.array_equal(got_f, ef[odd_f]) and np.array_equal(got_i, ei[odd_i]))
            out["pull_shard"] = bool(np.array_equal(whole, ef[odd_f]))
        except Exception as exc:  # noqa: BLE001 - recorded, the test reports it
            out["pull"] = out["pull_shard"] = False
            out["exception"] = f"{type(exc).__name__}: {exc}"
        out["ok"] = out["ping"] and out["pull"] and out["pull_shard"]
        return out

    def direct_pushes(self) -> dict:
        """Valid PUSH_ADDs straight to server 1 are acknowledged (and later seen by every worker)."""
        try:
            a = self._net.request(TARGET, Op.PUSH_ADD, table=self.tf, shard=TARGET, keys=DIRECT_F_KEYS,
                                  values=DIRECT_F_VALUES)
            b = self._net.request(TARGET, Op.PUSH_ADD, table=self.ti, shard=TARGET, keys=DIRECT_I_KEYS,
                                  values=DIRECT_I_VALUES)
            return {"ok": a.op == Op.ACK and b.op == Op.ACK}
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "exception": f"{type(exc).__name__}: {exc}"}

    # ------------------------------------------------------------ suites
    def suite_garbage(self, att: Attacker) -> None:
        rng = np.random.default_rng(self.cfg.seed + 4242)
        tf, ti, S = self.tf, self.ti, TARGET
        ones = np.ones((1, F_DIM), np.float32)

        def rid():
            return att.reqid()

        # random frame lists: plain random bytes, and random bytes behind a header with the right magic
        for n in range(self.cfg.random_messages):
            nframes = int(rng.integers(1, 5))
            frames = [rng.bytes(int(rng.integers(0, 100))) for _ in range(nframes)]
            if n % 2:
                frames[0] = HEADER.pack(MAGIC, int(rng.integers(0, 256)), int(rng.integers(0, 5)), 0,
                                        int(rng.integers(0, 4)), int(rng.integers(0, 3)), rid(), 0,
                                        int(rng.integers(0, 20)), int(rng.integers(0, 5)))
            if not self.rejected_locally(frames):
                att.skipped["random_but_valid"] = att.skipped.get("random_but_valid", 0) + 1
                continue
            att.send("random", frames)

        # mutated valid messages; the bases change nothing (zero deltas, pulls), so a mutation that
        # stays valid is harmless and may be answered normally
        odd_f, odd_i = np.arange(1, F_ROWS, 2), np.arange(1, I_ROWS, 2)
        bases = [
            lambda: encode(Op.PUSH_ADD, tf, S, rid(), keys=odd_f[:4], values=np.zeros((4, F_DIM), np.float32)),
            lambda: encode(Op.PUSH_RULE, tf, S, rid(), keys=odd_f[:3], values=np.zeros((3, F_DIM), np.float32),
                           extra=_rule(b"add")),
            lambda: encode(Op.PULL, ti, S, rid(), keys=odd_i[:5]),
            lambda: encode(Op.PULL_SHARD, tf, S, rid()),
            lambda: encode(Op.PUSH_ADD, ti, S, rid(), keys=odd_i[:2], values=np.zeros((2, 1), np.int64)),
        ]
        kinds = ("flip", "truncate", "extend", "drop", "add", "dtype", "count", "huge_count", "huge_dim", "op")
        for n in range(self.cfg.mutated_messages):
            frames = [bytes(x) for x in bases[n % len(bases)]()]
            kind = kinds[int(rng.integers(0, len(kinds)))]
            frames = mutate(frames, kind, rng)
            try:
                msg = decode(frames)
            except WireError:
                att.send(f"mutated_{kind}", frames)
                continue
            if msg.op in (Op.NODE_CLOCK, Op.WORKER_CLOCK, Op.ACK, Op.VALUES, Op.ITEMS, Op.ERROR):
                # clock notices are not answered and would move node clocks; reply ops have their own suite
                att.skipped["mutated_to_clock_or_reply_op"] = att.skipped.get("mutated_to_clock_or_reply_op", 0) + 1
                continue
            att.send("mutated_still_valid", frames, expect="any")

        # well-formed requests that the server must refuse (non-zero deltas: a partial write would show)
        def push_f(keys, values=None, table=tf, shard=S, op=Op.PUSH_ADD, extra=None):
            keys = np.asarray(keys, np.int64)
            if values is None:
                values = np.full((keys.shape[0], F_DIM), 100.0, np.float32)
            kw = {"extra": extra} if extra is not None else {}
            return encode(op, table, shard, rid(), keys=keys, values=values, **kw)

        bad = {
            "key_out_of_range": push_f([F_ROWS + 1]),
            "key_equal_rows": push_f([F_ROWS]),
            "key_negative": push_f([-1]),
            "key_huge": push_f([2**62 + 1]),
            "key_min_int64": push_f([-(2**63)]),
            "mixed_one_key_out_of_range": push_f([1, 3, F_ROWS + 3]),
            "key_wrong_shard": push_f([0, 2]),
            "mixed_one_key_wrong_shard": push_f([1, 3, 2]),
            "header_other_shard": push_f([0, 2], shard=0),
            "header_shard_out_of_range": push_f([1], shard=7),
            "wrong_dtype_float64": push_f([1], np.full((1, F_DIM), 1.0, np.float64)),
            "wrong_dtype_int64": push_f([1], np.full((1, F_DIM), 1, np.int64)),
            "wrong_dtype_float_into_int": encode(Op.PUSH_ADD, ti, S, rid(), keys=[1], values=np.ones((1, 1), np.float32)),
            "wrong_dim_more": push_f([1], np.ones((1, F_DIM + 1), np.float32)),
            "wrong_dim_less": push_f([1], np.ones((1, 1), np.float32)),
            "wrong_dim_int": encode(Op.PUSH_ADD, ti, S, rid(), keys=[1], values=np.ones((1, 2), np.int64)),
            "unknown_table": push_f([1], table=7),
            "unknown_table_max": push_f([1], table=2**32 - 1),
            "pull_key_out_of_range": encode(Op.PULL, tf, S, rid(), keys=[F_ROWS + 1]),
            "pull_key_negative": encode(Op.PULL, tf, S, rid(), keys=[-1]),
            "pull_key_wrong_shard": encode(Op.PULL, tf, S, rid(), keys=[2]),
            "pull_unknown_table": encode(Op.PULL, 9, S, rid(), keys=[1]),
            "pull_shard_other_shard": encode(Op.PULL_SHARD, tf, 0, rid()),
            "pull_shard_unknown_table": encode(Op.PULL_SHARD, 12, S, rid()),
            "rule_unknown": push_f([1], op=Op.PUSH_RULE, extra=_rule(b"nope")),
            "rule_empty_name": push_f([1], op=Op.PUSH_RULE, extra=_rule(b"")),
            "rule_non_ascii": push_f([1], op=Op.PUSH_RULE, extra=b"\xff\xfe"),
            "rule_long_name": push_f([1], op=Op.PUSH_RULE, extra=_rule(b"a" * 4000)),
            "rule_code_like": push_f([1], op=Op.PUSH_RULE, extra=_rule(b"__import__('os').system('true')")),
            "rule_stateful_on_plain_table": push_f([1], op=Op.PUSH_RULE, extra=_rule(b"adagrad")),
            "rule_float_only_on_int_table": encode(Op.PUSH_RULE, ti, S, rid(), keys=[1],
                                                   values=np.ones((1, 1), np.int64), extra=_rule(b"sgd")),
            "rule_key_out_of_range": push_f([F_ROWS + 1], op=Op.PUSH_RULE, extra=_rule(b"add")),
            "rule_wrong_shard": push_f([1, 2], op=Op.PUSH_RULE, extra=_rule(b"add")),
            "rule_wrong_dtype": push_f([1], np.ones((1, F_DIM), np.float64), op=Op.PUSH_RULE, extra=_rule(b"add")),
            "sparse_push_on_dense": push_f([1], op=Op.SPARSE_PUSH),
            "sparse_pull_on_dense": encode(Op.SPARSE_PULL, tf, S, rid(), keys=[1]),
            "sparse_items_on_dense": encode(Op.SPARSE_ITEMS, tf, S, rid()),
        }
        for case, frames in bad.items():
            att.send(case, [bytes(x) for x in frames])

        # unknown operations (not in the wire format)
        for op in (0, 10, 19, 24, 100, 255):
            for nframes in (0, 1, 2, 3):
                head = HEADER.pack(MAGIC, op, 1, 0, tf, S, rid(), 0, 1, F_DIM)
                att.send("unknown_op", [head] + [np.ones(1, np.int64).tobytes(), ones.tobytes(), b"add"][:nframes])

        # truncated, extended, missing or extra frames of pushes that would otherwise be valid
        good = [bytes(x) for x in push_f([1, 3], np.full((2, F_DIM), 100.0, np.float32))]
        rule = [bytes(x) for x in push_f([1, 3], np.full((2, F_DIM), 100.0, np.float32), op=Op.PUSH_RULE, extra=_rule(b"add"))]
        hdr, keys, vals = good
        truncated = {
            "header_truncated": [hdr[:-1], keys, vals],
            "header_only": [hdr],
            "header_empty": [b"", keys, vals],
            "keys_truncated": [hdr, keys[:-1], vals],
            "keys_one_key_short": [hdr, keys[:-8], vals],
            "values_truncated": [hdr, keys, vals[:-1]],
            "values_one_row_short": [hdr, keys, vals[:-4 * F_DIM]],
            "values_empty": [hdr, keys, b""],
            "values_missing": [hdr, keys],
            "values_extended": [hdr, keys, vals + b"\0" * 4],
            "extra_frame": [hdr, keys, vals, b"add"],
            "rule_name_missing": rule[:3],
            "rule_extra_frame": rule + [b"x"],
            "rule_name_too_long": rule[:3] + [b"a" * 5000],
        }
        for case, frames in truncated.items():
            att.send(case, frames)

        # header fields that do not match the frames
        header_cases = {
            "dtype_code_unknown": [set_field(hdr, 5, "<B", 9), keys, vals],
            "dtype_code_none": [set_field(hdr, 5, "<B", 0), keys, vals],
            "dtype_code_float64": [set_field(hdr, 5, "<B", 2), keys, vals],
            "dtype_code_int64": [set_field(hdr, 5, "<B", 3), keys, vals],
            "count_too_small": [set_field(hdr, 32, "<Q", 1), keys, vals],
            "count_too_big": [set_field(hdr, 32, "<Q", 3), keys, vals],
            "count_huge": [set_field(hdr, 32, "<Q", 2**40), keys, vals],
            "count_max": [set_field(hdr, 32, "<Q", 2**64 - 1), keys, vals],
            "dim_zero": [set_field(hdr, 40, "<I", 0), keys, vals],
            "dim_huge": [set_field(hdr, 40, "<I", 2**31), keys, vals],
            "dim_max": [set_field(hdr, 40, "<I", 2**32 - 1), keys, vals],
            "flags_set": [set_field(hdr, 6, "<H", 1), keys, vals],
            "magic_wrong": [b"XSH1" + hdr[4:], keys, vals],
        }
        for case, frames in header_cases.items():
            att.send(case, frames)

        # JSON control requests: unknown ops, not JSON, bad specs that must be refused
        spec = self._specs[tf].as_dict()
        control = {
            "json_unknown_op": {"op": "nope"},
            "json_op_not_string": {"op": 5},
            "json_op_null": {"op": None},
            "json_no_op": {},
            "json_exec_op": {"op": "exec", "code": "import os"},
            "json_create_no_spec": {"op": "create", "shard": S},
            "json_create_spec_string": {"op": "create", "spec": "sec_f", "shard": S},
            "json_create_spec_list": {"op": "create", "spec": [1, 2], "shard": S},
            "json_create_spec_empty": {"op": "create", "spec": {}, "shard": S},
            "json_create_spec_unknown_field": {"op": "create", "spec": {**spec, "index": 20, "evil": 1}, "shard": S},
            "json_create_spec_missing_field": {"op": "create", "spec": {k: v for k, v in spec.items() if k != "rows"},
                                               "shard": S},
            "json_create_existing_table": {"op": "create", "spec": spec, "shard": S},
            "json_create_other_shard": {"op": "create", "spec": {**spec, "index": 21}, "shard": 0},
            "json_create_shard_not_int": {"op": "create", "spec": {**spec, "index": 22}, "shard": "one"},
            "json_create_no_shard": {"op": "create", "spec": {**spec, "index": 23}},
            "json_cache_local_shard": {"op": "cache", "spec": spec, "shards": [S]},
            "json_cache_shards_not_list": {"op": "cache", "spec": spec, "shards": 5},
            "json_cache_shard_not_int": {"op": "cache", "spec": spec, "shards": ["x"]},
        }
        for case, obj in control.items():
            att.send(case, [json.dumps(obj).encode()])
        for case, raw in {"json_broken": b"{not json", "json_not_utf8": b"{\xff\xfe}", "json_array": b"[1, 2]",
                          "json_string": b'"ping"', "json_huge_number": b'{"op": 1e999999}',
                          "json_deep": b"{" + b'"a":{' * 50 + b"}" * 51}.items():
            att.send(case, [raw])

    def suite_reply_ops(self, att: Attacker) -> None:
        tf, S = self.tf, TARGET
        vals = np.ones((2, F_DIM), np.float32)
        for case, frames in {
            "ack_as_request": encode(Op.ACK, tf, S, att.reqid()),
            "values_as_request": encode(Op.VALUES, tf, S, att.reqid(), values=vals),
            "error_as_request": encode(Op.ERROR, tf, S, att.reqid(), extra=b"boom"),
            "items_as_request": encode(Op.ITEMS, tf, S, att.reqid(), keys=np.array([1, 3]), values=vals),
        }.items():
            att.send(case, [bytes(x) for x in frames])

    def suite_bad_specs(self, att: Attacker) -> None:
        """Control requests whose spec is JSON of the right shape but breaks the spec's rules."""
        S = TARGET
        spec = self._specs[self.tf].as_dict()
        cases = {
            # a second cache of a shard this node already caches, and a cache of a table that does not exist
            "cache_existing": {"op": "cache", "spec": spec, "shards": [0]},
            "cache_unknown_table": {"op": "cache", "spec": {**spec, "index": 30, "name": "ghost"}, "shards": [0]},
            # creates with values a declaration could never have
            "create_rows_negative": {**spec, "index": 31, "rows": -5},
            "create_rows_zero": {**spec, "index": 32, "rows": 0},
            "create_dim_string": {**spec, "index": 33, "dim": "3"},
            "create_dim_zero": {**spec, "index": 34, "dim": 0},
            "create_init_unknown": {**spec, "index": 35, "init": "bogus"},
            "create_rule_unknown": {**spec, "index": 36, "rule": "nope"},
            "create_nshards_wrong": {**spec, "index": 37, "nshards": 5},
            "create_index_negative": {**spec, "index": -1},
            "create_seed_string": {**spec, "index": 38, "init": "uniform", "seed": "x"},
            "create_value_string": {**spec, "index": 39, "init": "constant", "a": "x"},
            "create_nshards_zero": {**spec, "index": 40, "nshards": 0},
            "create_dtype_float16": {**spec, "index": 41, "dtype": "float16"},
            "create_dtype_object": {**spec, "index": 42, "dtype": "object"},
        }
        missing = self.output_path("no_such_dir") / "sub"
        cases.update({
            # a checkpoint that is not there, and save folders that cannot be written (nothing is written)
            "create_resume_missing": {**spec, "index": 43},
            "save_missing_dir": {"op": "save", "dir": str(missing)},
            "save_not_a_dir": {"op": "save", "dir": "/dev/null"},
        })
        for case, obj in cases.items():
            if case.startswith("create"):
                obj = {"op": "create", "spec": obj, "shard": S}
                if case == "create_resume_missing":
                    obj["resume"] = str(missing)
            att.send(case, [json.dumps(obj).encode()])

    def suite_outsiders(self, att: Attacker) -> None:
        """Clients without the job's keys send a valid PULL and a ping to every server: no answer may come."""
        rt = self._rt
        other = JobKeys.generate()
        clients = {
            "plain": None,
            "other_job_keys": other,
            "foreign_client_key": JobKeys(rt.keys.server_public, b"", other.client_public, other.client_secret),
        }
        ctx = zmq.Context()
        records = []
        try:
            for server, endpoint in enumerate(rt.endpoints):
                for name, keys in clients.items():
                    sock = ctx.socket(zmq.DEALER)
                    sock.linger = 0
                    try:
                        if keys is not None:
                            secure_client(sock, keys)
                        # a refused CURVE handshake leaves no pipe, and libzmq may not reconnect: a blocking send
                        # would wait for good, so a send that cannot go within the wait counts as not answered
                        sock.sndtimeo = int(OUTSIDER_WAIT * 1000)
                        sock.connect(endpoint)
                        try:
                            sock.send_multipart([b"", *[bytes(x) for x in encode(Op.PULL, self.tf, server,
                                                                                  att.reqid(), keys=np.array([server]))]])
                            sock.send_multipart([b"", json.dumps({"op": "ping"}).encode()])
                            answered = bool(sock.poll(int(OUTSIDER_WAIT * 1000)))
                        except zmq.Again:
                            answered = False
                    finally:
                        sock.close(linger=0)
                    records.append({"server": server, "client": name, "answered": answered})
        finally:
            ctx.term()
        # the same request through the job's own link is answered, by every server
        insiders = []
        for server in range(self.nserver):
            try:
                msg = self._net.request(server, Op.PULL, table=self.tf, shard=server, keys=np.array([server]))
                insiders.append({"server": server, "answered": True, "op": msg.name})
            except ParasolError as exc:
                insiders.append({"server": server, "answered": False, "error": f"{type(exc).__name__}: {exc}"})
        self.outsiders = {"records": records, "insiders": insiders}

    # ------------------------------------------------------------ helpers
    @staticmethod
    def rejected_locally(frames: list) -> bool:
        try:
            decode(frames)
        except WireError:
            return True
        return False


def mutate(frames: list, kind: str, rng: np.random.Generator) -> list:
    """One mutation of a valid message's frames (header flips, frame sizes and counts, header fields)."""
    frames = list(frames)
    if kind == "flip":
        b = bytearray(frames[0])
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
        frames[0] = bytes(b)
    elif kind == "truncate":
        j = int(rng.integers(0, len(frames)))
        frames[j] = frames[j][:-int(rng.integers(1, max(2, len(frames[j]) + 1)))] if frames[j] else b""
    elif kind == "extend":
        j = int(rng.integers(0, len(frames)))
        frames[j] = frames[j] + rng.bytes(int(rng.integers(1, 24)))
    elif kind == "drop":
        del frames[int(rng.integers(0, len(frames)))]
        if not frames:
            frames = [b""]
    elif kind == "add":
        frames.insert(int(rng.integers(0, len(frames) + 1)), rng.bytes(int(rng.integers(0, 64))))
    elif kind == "dtype":
        frames[0] = set_field(frames[0], 5, "<B", int(rng.integers(0, 256)))
    elif kind == "count":
        frames[0] = set_field(frames[0], 32, "<Q", int(rng.integers(0, 64)))
    elif kind == "huge_count":
        frames[0] = set_field(frames[0], 32, "<Q", int(rng.integers(2**26, 2**63)))
    elif kind == "huge_dim":
        frames[0] = set_field(frames[0], 40, "<I", int(rng.integers(2**16, 2**32)))
    elif kind == "op":
        frames[0] = set_field(frames[0], 4, "<B", int(rng.integers(0, 256)))
    return frames


if __name__ == "__main__":
    run(SecFuzz)
