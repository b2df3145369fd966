"""The job behind ``scripts/bench crossnode``: cross-node pull/push through the API vs raw pyzmq.

Two simulated nodes: worker 0 (node 0) is the client; the table's shard 1 is
owned by the server of node 1, and worker 1 (node 1) runs the raw pyzmq peer
(REQ/REP, DEALER/ROUTER and PUSH/PULL sockets on 127.0.0.1) for the limit.
Worker 0 times both sides in alternation and writes ``crossnode.json``.
"""

from __future__ import annotations

import time

import numpy as np
import zmq

from parasol_hybrid import Option, paralg, run
from parasol_hybrid.transport.wire import Op


class CrossNode(paralg):
    options = {
        "rows": Option(int, 100_000, "rows per shard"),
        "dim": Option(int, 32, "floats per row"),
        "small": Option(int, 1000, "rows of a small request"),
        "big": Option(int, 8192, "rows of a big (1 MiB) request"),
        "repeats": Option(int, 5, "interleaved repeats"),
        "small_count": Option(int, 300, "small requests per sample"),
        "big_count": Option(int, 48, "big requests per sample"),
        "window": Option(int, 8, "requests in flight when streaming"),
    }

    def solve(self) -> None:
        cfg = self.cfg
        t = self.table("T", (2 * cfg.rows, cfg.dim), "float32", "normal", std=1.0)
        ctx = self._rt.ctx
        if self.worker_id == 1:
            socks = {"rep": ctx.socket(zmq.REP), "router": ctx.socket(zmq.ROUTER), "pull": ctx.socket(zmq.PULL),
                     "ctl": ctx.socket(zmq.REP), "router_c": ctx.socket(zmq.ROUTER), "pull_c": ctx.socket(zmq.PULL)}
            for name in ("router_c", "pull_c"):  # the same with CURVE encryption (no ZAP check)
                socks[name].curve_secretkey = self._rt.keys.server_secret
                socks[name].curve_publickey = self._rt.keys.server_public
                socks[name].curve_server = True
            eps = {k: f"tcp://127.0.0.1:{s.bind_to_random_port('tcp://127.0.0.1')}" for k, s in socks.items()}
        else:
            eps = None
        eps = [e for e in self.allgather(eps) if e is not None][0]
        if self.worker_id == 1:
            self._peer(socks, cfg)
            for s in socks.values():
                s.close(linger=0)
        elif self.worker_id == 0:
            result = self._client(ctx, eps, t, cfg)
            self.write_json("crossnode.json", result)
        self.sync()

    # ------------------------------------------------------------------ raw peer (worker 1)
    def _peer(self, socks, cfg) -> None:
        small_reply = np.ones((cfg.small, cfg.dim), np.float32)
        big_reply = np.ones((cfg.big, cfg.dim), np.float32)
        poller = zmq.Poller()
        for s in socks.values():
            poller.register(s, zmq.POLLIN)
        received = 0
        expect = None
        while True:
            ev = dict(poller.poll(1000))
            if socks["rep"] in ev:
                frames = socks["rep"].recv_multipart(copy=False)
                if len(frames) == 1:  # a pull: 1 frame of keys -> rows
                    socks["rep"].send(small_reply if len(frames[0]) <= cfg.small * 8 else big_reply, copy=False)
                else:  # a push: keys and values -> ack
                    socks["rep"].send(b"ok")
            for name in ("router", "router_c"):
                if socks[name] in ev:
                    ident, _, keys = socks[name].recv_multipart(copy=False)
                    socks[name].send_multipart([ident, b"", big_reply], copy=False)
            for name in ("pull", "pull_c"):
                if socks[name] in ev:
                    while True:
                        try:
                            socks[name].recv_multipart(zmq.NOBLOCK, copy=False)
                            received += 1
                        except zmq.Again:
                            break
            if socks["ctl"] in ev:
                msg = socks["ctl"].recv()
                if msg == b"stop":
                    socks["ctl"].send(b"bye")
                    return
                expect = int(msg)
            if expect is not None and received >= expect:
                received -= expect
                expect = None
                socks["ctl"].send(b"done")

    # ------------------------------------------------------------------ client (worker 0)
    def _client(self, ctx, eps, t, cfg) -> dict:
        link = self._net
        rng = np.random.default_rng(0)
        idx = t.spec.index

        def keys(n):  # rows of shard 1 (odd keys), random, sorted
            return np.sort(rng.integers(0, cfg.rows, n)) * 2 + 1

        ks, kb = keys(cfg.small), keys(cfg.big)
        vs = np.full((cfg.small, cfg.dim), 1e-3, np.float32)
        vb = np.full((cfg.big, cfg.dim), 1e-3, np.float32)
        req = ctx.socket(zmq.REQ)
        req.connect(eps["rep"])
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(eps["router"])
        push = ctx.socket(zmq.PUSH)
        push.sndhwm = 64
        push.connect(eps["pull"])
        ctl = ctx.socket(zmq.REQ)
        ctl.connect(eps["ctl"])
        keys_ = self._rt.keys
        dealer_c, push_c = ctx.socket(zmq.DEALER), ctx.socket(zmq.PUSH)
        for sock, ep in ((dealer_c, eps["router_c"]), (push_c, eps["pull_c"])):
            sock.curve_serverkey = keys_.server_public
            sock.curve_publickey = keys_.client_public
            sock.curve_secretkey = keys_.client_secret
            sock.sndhwm = 64
            sock.connect(ep)

        def timed(fn, count):
            t0 = time.perf_counter()
            fn(count)
            return count / (time.perf_counter() - t0)

        def api_pull_small(n):
            for _ in range(n):
                link.request(1, Op.PULL, table=idx, shard=1, keys=ks)

        def raw_pull_small(n):
            for _ in range(n):
                req.send(ks, copy=False)
                req.recv(copy=False)

        def api_push_small(n):
            for _ in range(n):
                link.request(1, Op.PUSH_ADD, table=idx, shard=1, keys=ks, values=vs)

        def raw_push_small(n):
            for _ in range(n):
                req.send_multipart([ks, vs], copy=False)
                req.recv()

        def api_push_big(n):
            link.stream(1, ({"op": Op.PUSH_ADD, "table": idx, "shard": 1, "keys": kb, "values": vb}
                            for _ in range(n)), window=cfg.window)

        def raw_push_big(n, sock=push):
            for _ in range(n):
                sock.send_multipart([kb, vb], copy=False)
            ctl.send(str(n).encode())
            ctl.recv()

        def api_pull_big(n):
            link.stream(1, ({"op": Op.PULL, "table": idx, "shard": 1, "keys": kb} for _ in range(n)),
                        window=cfg.window)

        def raw_pull_big(n, sock=dealer):
            out = 0
            sent = 0
            while out < n:
                while sent < n and sent - out < cfg.window:
                    sock.send_multipart([b"", kb], copy=False)
                    sent += 1
                sock.recv_multipart(copy=False)
                out += 1

        pairs = {
            "pull_small": (api_pull_small, raw_pull_small, cfg.small_count, "round trips/s"),
            "push_small": (api_push_small, raw_push_small, cfg.small_count, "round trips/s"),
            "push_1mib": (api_push_big, raw_push_big, cfg.big_count, "batches/s"),
            "pull_1mib": (api_pull_big, raw_pull_big, cfg.big_count, "batches/s"),
            "push_1mib_vs_curve": (api_push_big, lambda n: raw_push_big(n, push_c), cfg.big_count, "batches/s"),
            "pull_1mib_vs_curve": (api_pull_big, lambda n: raw_pull_big(n, dealer_c), cfg.big_count, "batches/s"),
        }
        for api, raw, count, _ in pairs.values():  # warm up both sides
            api(2)
            raw(2)
        results = {}
        for name, (api, raw, count, unit) in pairs.items():
            a, b = [], []
            for r in range(cfg.repeats):
                if r % 2 == 0:
                    a.append(timed(api, count))
                    b.append(timed(raw, count))
                else:
                    b.append(timed(raw, count))
                    a.append(timed(api, count))
            results[name] = {"api": a, "limit": b, "unit": unit}
        ctl.send(b"stop")
        ctl.recv()
        for s in (req, dealer, push, ctl, dealer_c, push_c):
            s.close(linger=0)
        batch_bytes = {"pull_small": ks.nbytes + vs.nbytes, "push_small": ks.nbytes + vs.nbytes,
                       "push_1mib": kb.nbytes + vb.nbytes, "pull_1mib": kb.nbytes + vb.nbytes,
                       "push_1mib_vs_curve": kb.nbytes + vb.nbytes, "pull_1mib_vs_curve": kb.nbytes + vb.nbytes}
        return {"results": results, "batch_bytes": batch_bytes, "value_bytes_big": int(vb.nbytes)}


if __name__ == "__main__":
    run(CrossNode)
