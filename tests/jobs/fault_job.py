"""Fault-injection job (issue 9, item 6): one peer misbehaves mid-job; the job must end with an error naming it.

Layout: 3 workers, 2 servers, 2 simulated nodes (node 0: workers 0, 1, server 0 = rank 2; node 1: worker 2
= rank 3, server 1 = rank 4, node 1's agent). ``fault`` picks what server 1 does wrong, patched into the
library here, in this rank, before ``run()`` (the library has no fault hooks):

* ``drop_ack``: it does not send its first ACK of a flush (a PUSH_ADD from node 0's agent).
* ``drop_one_node_clock``: node 1's agent loses its NODE_CLOCK of the job's last clock (the job should
  recover: agents repeat their clock).
* ``silent_agent``: node 1's agent sends no NODE_CLOCK of clock 2 or later (nor any heartbeat).
* ``stall_server``: its loop sleeps ``peer_timeout + 5`` s at its first PUSH_RULE (an ``assign`` from a
  worker of node 0).
* ``delay_rule``: it holds back its answer to its first PUSH_RULE for ``peer_timeout + 5`` s (its loop
  keeps running).
* ``close_socket``: after node 1 flushed clock 2, it closes its ROUTER and its agent's sockets and idles.

The workers push to every row (so every worker touches rows of a remote shard) and clock ``steps`` times.
The master writes ``<output>/done.json`` if the job gets through; the time the fault first struck is
written to ``fault_at`` next to the config.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from parasol_hybrid import Option, get_rule, paralg, run
from parasol_hybrid.cluster import agent as agent_mod
from parasol_hybrid.cluster import server as server_mod
from parasol_hybrid.transport.wire import Op, WireError, decode

FAULTS = ("none", "drop_ack", "drop_one_node_clock", "silent_agent", "stall_server", "delay_rule", "close_socket")


def _op_clock(frames) -> tuple[int, int]:
    """The operation and clock of a message's frames (with or without the empty delimiter)."""
    frames = [bytes(getattr(f, "bytes", f)) for f in frames]
    if frames and frames[0] == b"":
        frames = frames[1:]
    try:
        msg = decode(frames)
    except WireError:  # a JSON control message
        return -1, -1
    return msg.op, msg.clock


def inject(fault: str, peer_timeout: float, stamp: Path, last: int) -> None:
    """Patch ``fault`` into the library; the moment it first strikes is written to ``stamp``.

    ``last`` is the job's last clock (no NODE_CLOCK follows it, so a lost one is never made up for by a
    later one).
    """
    state = {"done": False}

    def struck() -> None:
        state["done"] = True
        if not stamp.exists():
            stamp.write_text(repr(time.time()))
    if fault == "drop_ack":
        orig = server_mod.Server._reply

        def _reply(self, envelope, frames, *args, **kw):
            if self.rt.index == 1 and not state["done"] and _op_clock(frames)[0] == Op.ACK:
                struck()
                return None
            return orig(self, envelope, frames, *args, **kw)
        server_mod.Server._reply = _reply
    elif fault in ("drop_one_node_clock", "silent_agent"):
        orig = agent_mod.NodeAgent._send

        def _send(self, server, frames, *args, **kw):
            if self.node == 1:
                op, clock = _op_clock(frames)
                if op == Op.NODE_CLOCK:
                    if fault == "silent_agent" and clock >= 2:
                        struck()
                        return None
                    if fault == "drop_one_node_clock" and clock >= last and not state["done"]:
                        struck()
                        return None
            return orig(self, server, frames, *args, **kw)
        agent_mod.NodeAgent._send = _send
    elif fault == "stall_server":
        orig = server_mod.Server._data

        def _data(self, msg):
            if self.rt.index == 1 and msg.op == Op.PUSH_RULE and not state["done"]:
                struck()
                time.sleep(peer_timeout + 5)
            return orig(self, msg)
        server_mod.Server._data = _data
    elif fault == "delay_rule":
        orig_reply, orig_serve, orig_data = server_mod.Server._reply, server_mod.Server.serve, server_mod.Server._data
        held = []

        def _data(self, msg):  # _handle calls _data, then _reply with its answer
            state["rule"] = msg.op == Op.PUSH_RULE
            return orig_data(self, msg)

        def _reply(self, envelope, frames, *args, **kw):
            if self.rt.index == 1 and not state["done"] and state.get("rule"):
                struck()
                held.append((time.monotonic() + peer_timeout + 5, envelope, frames, args, kw))
                return None
            return orig_reply(self, envelope, frames, *args, **kw)

        def serve(self, done):
            def due():  # the loop calls done() every round: send held replies when they are due
                while held and held[0][0] <= time.monotonic():
                    _, envelope, frames, args, kw = held.pop(0)
                    orig_reply(self, envelope, frames, *args, **kw)
                return done()
            return orig_serve(self, due)
        server_mod.Server._reply = _reply
        server_mod.Server.serve = serve
        server_mod.Server._data = _data
    elif fault == "close_socket":
        orig = server_mod.Server.serve

        def serve(self, done):
            if self.rt.index != 1:
                return orig(self, done)
            orig(self, lambda: done() or self.agent.node_clock[self.agent.node] >= 2)
            struck()
            self.sock.close(linger=0)
            for sock in self.agent.socks.values():
                sock.close(linger=0)
            while not done():
                time.sleep(0.05)
        server_mod.Server.serve = serve


def precompile_assign() -> None:
    """Compile the ``assign`` push kernel as workers (writable arrays) and servers (read-only frames) call it.

    A cold numba compile takes seconds on a loaded machine, longer than this job's ``peer_timeout``; done
    here, before ``run()``, it cannot pass for a stalled peer.
    """
    rule = get_rule("assign")
    shards = (np.zeros((4, 2)), np.zeros((1, 2)))
    states = (np.zeros((4, 0, 2)), np.zeros((1, 0, 2)))
    keys, values = np.array([0, 2]), np.ones((2, 2))
    rule.apply(shards, states, 8, keys, values, np.zeros(0))
    keys.flags.writeable = values.flags.writeable = False
    rule.apply(shards, states, 8, keys, values, np.zeros(0))


class FaultJob(paralg):
    options = {"fault": Option(str, "none", "what goes wrong", choices=FAULTS),
               "steps": Option(int, 8, "clocks"),
               "rule_table": Option(bool, False, "also push with rule='assign' (a PUSH_RULE to the owner)")}

    def solve(self) -> None:
        rows = 8
        t = self.table("t", (rows, 2), "float64", exact=True)  # two workers of a node push the same rows
        a = self.table("a", (rows, 2), "float64", rule="assign") if self.cfg.rule_table else None
        keys = np.arange(rows)
        for step in range(self.cfg.steps):
            self.push(t, keys, np.ones((rows, 2)))
            if a is not None:
                self.push(a, keys, np.full((rows, 2), float(step)))
            self.clock()
            time.sleep(0.05)
        self.sync()
        total = self.pull_all(t)
        self.write_json("done.json", {"total": total.tolist()})
        self.sync()


if __name__ == "__main__":
    import json
    import os
    import sys

    cfg_path = os.environ.get("PARASOL_CONFIG") or sys.argv[sys.argv.index("--config") + 1]
    cfg = json.loads(open(cfg_path).read())
    inject(cfg.get("fault", "none"), float(cfg.get("peer_timeout", 60.0)), Path(cfg_path).parent / "fault_at",
           int(cfg.get("steps", 8)) + 2)  # solve() clocks ``steps`` times, then sync() twice
    if cfg.get("rule_table"):
        precompile_assign()
    run(FaultJob)
