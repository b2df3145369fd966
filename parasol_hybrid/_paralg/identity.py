"""Who this worker is in the job: its id, the job's shape, whether it is the master, the staleness bound."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..cluster.runtime import Runtime
    from ..config import Config

__all__ = ["IdentityMixin"]


class IdentityMixin:
    """The read-only facts about this worker and its job (from the runtime and the config)."""

    _rt: Runtime
    cfg: Config

    @property
    def worker_id(self) -> int:
        """This worker's id, 0 .. nworker-1."""
        return self._rt.index

    @property
    def nworker(self) -> int:
        return self._rt.nworker

    @property
    def nserver(self) -> int:
        return self._rt.nserver

    @property
    def node_id(self) -> int:
        """The node this worker runs on (0 .. nnodes-1)."""
        return self._rt.node

    @property
    def nnodes(self) -> int:
        return self._rt.nnodes

    @property
    def is_master(self) -> bool:
        """True on worker 0, which prints progress and writes shared outputs."""
        return self._rt.index == 0

    @property
    def staleness(self) -> int:
        return int(self.cfg.staleness)
