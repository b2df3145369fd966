"""Biased MF by SGD on a Ray parameter server, written the way Ray's documentation shows one.

The peer of ``algs/mf.py`` in the ``peers`` benchmark (``benchmarks/peers.py``).
One ``@ray.remote`` actor, :class:`ParameterServer`, holds the parameters
(user and item factors and biases, float32, initialised like the job's:
normal with ``init_std``, biases 0). Each of ``nworker`` ``@ray.remote``
:class:`DataWorker` actors holds its share of the ratings (by user, the
job's ``fmap`` partition) and, per mini-batch of ``batch`` ratings, pulls the
rows the batch touches, computes the SGD gradients of the squared error plus
``beta/2`` L2 with numpy, summed per row, and pushes them; the server applies
``row -= alpha * gradient``. Pushes do not wait for a reply (actor calls from
one caller run in order, so a worker's next pull sees its own push). The
driver runs one epoch at a time on all workers (``ray.get`` on every
worker's epoch), the job's ``staleness 0``.

Run by ``benchmarks/peers.py`` in a subprocess, so that Ray's processes
start and end with it and its CPU can be told from other processes'::

    python -m benchmarks.peers_ray --train TRAIN.tsv --test TEST.tsv --out result.json [--k 32 ...]

The JSON result has ``ratings_per_second`` and ``train_seconds`` (the epochs
only), ``init_seconds`` (``ray.init``), ``setup_seconds`` (data to the
actors), ``test_rmse``, ``train_rmse`` (during the last epoch) and
``others_cores`` (cores used meanwhile by processes outside this one and its
descendants, i.e. not Ray's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import ray
except ImportError:  # an optional extra: pip install .[bench]
    ray = None

__all__ = ["available", "main", "train"]

WHY_MISSING = "ray is not installed (it is an optional extra: pip install '.[bench]')"


def available() -> bool:
    """Whether Ray can be imported here."""
    return ray is not None


if ray is not None:

    @ray.remote
    class ParameterServer:
        """Holds the MF parameters; workers pull rows and push summed gradients, applied by plain SGD."""

        def __init__(self, n_users: int, n_items: int, k: int, init_std: float, lr: float, seed: int):
            rng = np.random.default_rng(seed)
            self.P = rng.normal(0.0, init_std, (n_users, k)).astype(np.float32)
            self.Q = rng.normal(0.0, init_std, (n_items, k)).astype(np.float32)
            self.bu = np.zeros(n_users, np.float32)
            self.bi = np.zeros(n_items, np.float32)
            self.lr = lr

        def pull(self, users: np.ndarray, items: np.ndarray):
            """The rows of ``users`` (distinct) and ``items`` (distinct)."""
            return self.P[users], self.Q[items], self.bu[users], self.bi[items]

        def push(self, users, items, gP, gQ, gbu, gbi) -> None:
            """Apply the gradients of distinct rows: ``row -= lr * gradient``."""
            self.P[users] -= self.lr * gP
            self.Q[items] -= self.lr * gQ
            self.bu[users] -= self.lr * gbu
            self.bi[items] -= self.lr * gbi

        def get_weights(self):
            return self.P, self.Q, self.bu, self.bi

    @ray.remote
    class DataWorker:
        """One worker's ratings; trains one epoch of mini-batches against the server per call."""

        def __init__(self, users, items, ratings, mu: float, reg: float, batch: int, seed: int, index: int):
            self.u, self.i, self.r = users, items, ratings
            self.mu, self.reg, self.batch = mu, reg, batch
            self.seed, self.index = seed, index

        def ready(self) -> int:
            return len(self.r)

        def train_epoch(self, ps, epoch: int) -> float:
            """Pull, compute, push over a shuffled pass of this worker's ratings; returns the sum of squared
            errors seen (at the pulled parameters)."""
            order = np.random.default_rng([self.seed, self.index, epoch]).permutation(len(self.r))
            sse, pushed = 0.0, None
            for lo in range(0, len(order), self.batch):
                idx = order[lo:lo + self.batch]
                u, i, r = self.u[idx], self.i[idx], self.r[idx]
                users, uinv = np.unique(u, return_inverse=True)
                items, iinv = np.unique(i, return_inverse=True)
                P, Q, bu, bi = ray.get(ps.pull.remote(users, items))
                p, q = P[uinv], Q[iinv]
                err = r - (self.mu + bu[uinv] + bi[iinv] + np.einsum("nk,nk->n", p, q))
                sse += float(err @ err)
                gP = np.zeros_like(P)
                gQ = np.zeros_like(Q)
                np.add.at(gP, uinv, self.reg * p - err[:, None] * q)
                np.add.at(gQ, iinv, self.reg * q - err[:, None] * p)
                gbu = np.bincount(uinv, weights=self.reg * bu[uinv] - err, minlength=len(users))
                gbi = np.bincount(iinv, weights=self.reg * bi[iinv] - err, minlength=len(items))
                pushed = ps.push.remote(users, items, gP, gQ, gbu.astype(np.float32), gbi.astype(np.float32))
            if pushed is not None:
                ray.get(pushed)  # the epoch ends when the server has applied this worker's last push
            return sse


def _read(path: Path):
    from parasol_hybrid import data as loaders

    return loaders.parse_ratings(loaders.read_all_lines(loaders.expand_inputs(str(path))))


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of process ``root`` and its live descendants, from /proc."""
    hz = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: ppid
        cpu[pid] = (int(fields[11]) + int(fields[12])) / hz  # utime, stime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (plus steal), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def train(train_tsv: Path, test_tsv: Path, k: int, alpha: float, beta: float, init_std: float, rounds: int,
          nworker: int = 2, batch: int = 1000, seed: int = 0, num_cpus: int = 2, temp_dir: str | None = None) -> dict:
    """Train on ``train_tsv`` with Ray (started here, shut down at the end); the figures as a dict."""
    if ray is None:
        raise RuntimeError(WHY_MISSING)
    from parasol_hybrid.data import owner

    wall0 = time.perf_counter()
    tr, te = _read(train_tsv), _read(test_tsv)
    users, u = np.unique(tr.rows.astype(str), return_inverse=True)
    items, i = np.unique(tr.cols.astype(str), return_inverse=True)
    r = tr.values.astype(np.float64)
    mu = float(r.mean())
    part = owner(tr, "fmap", nworker)
    read_seconds = time.perf_counter() - wall0

    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    try:
        init_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        ps = ParameterServer.remote(len(users), len(items), k, init_std, alpha, seed)
        workers = [DataWorker.remote(u[part == w], i[part == w], r[part == w], mu, beta, batch, seed, w)
                   for w in range(nworker)]
        ray.get([w.ready.remote() for w in workers] + [ps.get_weights.remote()])
        setup_seconds = time.perf_counter() - t0

        cpu0, busy0, t0 = _tree_cpu(os.getpid()), _busy(), time.perf_counter()
        sse = 0.0
        for epoch in range(rounds):
            sse = sum(ray.get([w.train_epoch.remote(ps, epoch) for w in workers]))
        train_seconds = time.perf_counter() - t0
        others = max(0.0, (_busy() - busy0) - (_tree_cpu(os.getpid()) - cpu0)) / max(train_seconds, 1e-9)
        P, Q, bu, bi = ray.get(ps.get_weights.remote())
    finally:
        ray.shutdown()

    tu = np.searchsorted(users, te.rows.astype(str))
    ti = np.searchsorted(items, te.cols.astype(str))
    tu = np.where((tu < len(users)) & (users[np.minimum(tu, len(users) - 1)] == te.rows.astype(str)), tu, -1)
    ti = np.where((ti < len(items)) & (items[np.minimum(ti, len(items) - 1)] == te.cols.astype(str)), ti, -1)
    pred = np.full(len(te), mu)
    pred += np.where(tu >= 0, bu[tu], 0.0) + np.where(ti >= 0, bi[ti], 0.0)
    both = (tu >= 0) & (ti >= 0)
    pred[both] += np.einsum("nk,nk->n", P[tu[both]], Q[ti[both]])
    test_rmse = float(np.sqrt(np.mean((te.values - pred) ** 2)))
    return {"ratings_per_second": len(r) * rounds / train_seconds, "train_seconds": train_seconds,
            "init_seconds": init_seconds, "setup_seconds": setup_seconds, "read_seconds": read_seconds,
            "wall_seconds": time.perf_counter() - wall0, "test_rmse": test_rmse,
            "train_rmse": float(np.sqrt(sse / len(r))), "others_cores": round(others, 3),
            "ratings": len(r), "test_ratings": len(te), "users": len(users), "items": len(items),
            "rounds": rounds, "nworker": nworker, "batch": batch, "k": k, "alpha": alpha, "beta": beta,
            "init_std": init_std, "ray": ray.__version__}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers_ray", description=train.__doc__)
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="where to write the JSON result")
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--init-std", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--nworker", type=int, default=2)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--temp-dir", default=None, help="Ray's session folder (default: Ray's own)")
    a = p.parse_args(argv)
    if ray is None:
        print(f"peers_ray: {WHY_MISSING}", file=sys.stderr)
        return 2
    res = train(a.train, a.test, a.k, a.alpha, a.beta, a.init_std, a.rounds, a.nworker, a.batch, a.seed,
                a.num_cpus, a.temp_dir)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
