"""Run under mpiexec: each rank loads its share with data.share.load_share and checks it against the
Python reference (every line parsed by parse_ratings, then partition()); exits 1 on a mismatch.

argv: pattern on_bad_line weight_required(0/1) shared_ids(0/1) file [file ...] [+ file [file ...] ...]
Each group of files (groups are parted by ``+``) is loaded and checked in turn, in one job.
With SHARE_NODES=0,0,1,... in the environment (the node of each rank) the exchange goes through shared memory
between ranks of the same node, under a fresh job id; no segment of it may be left afterwards.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from parasol_hybrid.data import parse_ratings, partition, read_all_lines
from parasol_hybrid.data.share import load_share
from parasol_hybrid.errors import InputError
from parasol_hybrid.tables.segment import leftovers, new_job_id


def main() -> int:
    groups: list[list[Path]] = [[]]
    for arg in sys.argv[5:]:
        if arg == "+":
            groups.append([])
        else:
            groups[-1].append(Path(arg))
    failed = 0
    for files in groups:
        failed = max(failed, check(files))
    return failed


def check(files: list[Path]) -> int:
    """Load ``files`` as this rank's share and compare it with the Python reference: 0 if equal, 1, or 3."""
    pattern, policy, weight_required, shared = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
    comm = MPI.COMM_WORLD
    nodes = os.environ.get("SHARE_NODES")
    node_of = [int(x) for x in nodes.split(",")] if nodes else None
    job_id = comm.bcast(new_job_id() if comm.rank == 0 else None) if nodes else None
    try:
        seed = [7, comm.rank] if os.environ.get("SHARE_SHUFFLE") else None
        got = load_share(comm, files, pattern, on_bad_line=policy, weight_required=weight_required,
                         shared_ids=shared, node_of=node_of, job_id=job_id, shuffle_seed=seed)
    except InputError as exc:
        print(f"InputError: {exc}", flush=True)
        return 3
    everything = parse_ratings(read_all_lines(files), on_bad_line=policy, weight_required=weight_required)
    ref = partition(everything, pattern, comm.rank, comm.size)
    rows = sorted(set(everything.rows.tolist()) | (set(everything.cols.tolist()) if shared else set()))
    cols = rows if shared else sorted(set(everything.cols.tolist()))
    problems = []
    if list(got.row_ids) != rows:
        problems.append(f"row vocabulary {list(got.row_ids)[:8]} != {rows[:8]}")
    if list(got.col_ids) != cols:
        problems.append(f"column vocabulary {list(got.col_ids)[:8]} != {cols[:8]}")
    if seed is not None:  # the same triples, in another order, the same for the same seed
        again = load_share(comm, files, pattern, on_bad_line=policy, weight_required=weight_required,
                           shared_ids=shared, node_of=node_of, job_id=job_id, shuffle_seed=seed)
        if not (np.array_equal(again.u, got.u) and np.array_equal(again.i, got.i)):
            problems.append("a second shuffled load with the same seed differs")
        mine = sorted(zip(got.rows.tolist(), got.cols.tolist(), got.values.tolist()))
        if mine != sorted(zip(ref.rows.tolist(), ref.cols.tolist(), ref.values.tolist())):
            problems.append("the shuffled share holds other triples")
        if len(ref) > 100 and list(got.rows) == list(ref.rows):
            problems.append("the shuffled share is in the files' order")
    elif list(got.rows) != list(ref.rows) or list(got.cols) != list(ref.cols):
        problems.append(f"triples {list(zip(got.rows, got.cols))[:6]} != {list(zip(ref.rows, ref.cols))[:6]}")
    if seed is None and not np.array_equal(got.values.view(np.int64), ref.values.view(np.int64)):
        problems.append("weights differ")
    if comm.allreduce(got.bad_lines) != everything.bad_lines:
        problems.append(f"bad lines {comm.allreduce(got.bad_lines)} != {everything.bad_lines}")
    comm.Barrier()
    if job_id is not None and leftovers(job_id):
        problems.append(f"segments left: {leftovers(job_id)}")
    if got.u.dtype != np.int32:
        problems.append(f"rows are {got.u.dtype}, not int32")
    for p in problems:
        print(f"rank {comm.rank}, {files[0].name}: {p}", flush=True)
    return 1 if comm.allreduce(len(problems)) else 0


if __name__ == "__main__":
    sys.exit(main())
