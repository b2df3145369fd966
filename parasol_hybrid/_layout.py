"""The job's layout: which rank is on which node and does what. Pure functions, unit-tested without MPI.

It sits below :mod:`parasol_hybrid.config` (which checks with it that a simulated layout is possible
before any rank starts) and :mod:`parasol_hybrid.cluster.runtime` (which lays the job out with it).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["Layout", "simulated_nodes", "assign_roles"]


@dataclass(frozen=True)
class Layout:
    """The job's layout: for every world rank its node, role and index within the role."""

    node_of: tuple[int, ...]      # world rank -> node index (0..nnodes-1, in order of first rank)
    is_server: tuple[bool, ...]   # world rank -> server?
    index_of: tuple[int, ...]     # world rank -> worker id or server id (= shard index)

    @property
    def size(self) -> int:
        return len(self.node_of)

    @property
    def nnodes(self) -> int:
        return len(set(self.node_of))

    @property
    def servers(self) -> list[int]:
        """World ranks of the servers, by server id."""
        return [r for r in range(self.size) if self.is_server[r]]

    @property
    def workers(self) -> list[int]:
        """World ranks of the workers, by worker id."""
        return [r for r in range(self.size) if not self.is_server[r]]

    def servers_on(self, node: int) -> list[int]:
        return [r for r in self.servers if self.node_of[r] == node]

    def workers_on(self, node: int) -> list[int]:
        return [r for r in self.workers if self.node_of[r] == node]


def simulated_nodes(size: int, k: int) -> list[int]:
    """Split ``size`` ranks into ``k`` simulated nodes of consecutive ranks (as even as possible)."""
    if k < 1 or k > size:
        raise ConfigError(f"simulate_nodes must be between 1 and the number of ranks ({size}), got {k}")
    return [r * k // size for r in range(size)]


def assign_roles(node_keys: list, nworker: int, nserver: int) -> Layout:
    """Give each rank a role; servers are spread so that every node has at least one.

    ``node_keys[r]`` identifies rank r's node (any hashable). Servers are taken
    round-robin over the nodes, from the highest rank of each node down, until
    there are ``nserver`` of them; the other ranks are workers.
    """
    size = len(node_keys)
    if size != nworker + nserver:
        raise ConfigError(
            f"the job has {size} ranks but the config asks for nworker + nserver = {nworker} + {nserver} = "
            f"{nworker + nserver}; start it with run_parasol or mpiexec -n {nworker + nserver}"
        )
    order: dict = {}
    for key in node_keys:
        order.setdefault(key, len(order))
    node_of = tuple(order[k] for k in node_keys)
    nnodes = len(order)
    if nserver < nnodes:
        raise ConfigError(f"nserver ({nserver}) must be at least the number of nodes ({nnodes}): every node needs a server")
    pending = {n: [r for r in range(size) if node_of[r] == n] for n in range(nnodes)}
    is_server = [False] * size
    taken = 0
    while taken < nserver:
        progressed = False
        for n in range(nnodes):
            if taken < nserver and pending[n]:
                is_server[pending[n].pop()] = True
                taken += 1
                progressed = True
        if not progressed:  # pragma: no cover - guarded by the size check
            break
    for n in range(nnodes):
        if not any(not is_server[r] for r in range(size) if node_of[r] == n):
            ranks = [r for r in range(size) if node_of[r] == n]
            raise ConfigError(f"node {n} (ranks {ranks}) would have servers only: every node needs a worker "
                              f"as well (use more ranks per node: nworker >= number of nodes)")
    index_of = [0] * size
    w = s = 0
    for r in range(size):
        if is_server[r]:
            index_of[r] = s
            s += 1
        else:
            index_of[r] = w
            w += 1
    if w == 0:
        raise ConfigError("nworker must be at least 1")
    return Layout(node_of, tuple(is_server), tuple(index_of))
