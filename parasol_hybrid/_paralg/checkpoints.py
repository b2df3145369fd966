"""Checkpoints in :class:`~parasol_hybrid.paralg`: saving one (``checkpoint``, ``round_done``, and
``clock`` every ``checkpoint_every`` rounds), and finding and checking the one a job resumes from.

The files and the manifest are :mod:`parasol_hybrid.checkpoint`'s; here the workers agree on when, the
node leaders have their servers save their shards, and worker 0 writes the manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkpoint
from ..cluster.collectives import allgather_obj, barrier, bcast_obj
from ..errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from ..cluster.control import ControlClient
    from ..cluster.runtime import Runtime
    from ..config import Config
    from ..tables.spec import TableSpec

__all__ = ["CheckpointMixin"]


class CheckpointMixin:
    """``checkpoint``, ``round_done`` (collectives) and the resume at start-up."""

    _rt: Runtime
    cfg: Config
    _round: int
    _specs: list[TableSpec]
    _clients: dict[int, ControlClient]
    _resume: Path | None
    _manifest: dict | None
    start_round: int

    def checkpoint(self) -> Path | None:
        """Save a checkpoint now (collective); returns its folder on worker 0.

        Workers may have called :meth:`clock` a different number of times (under SSP, say): the
        checkpoint is numbered by the highest :attr:`round` of any worker, every worker's round moves
        there (as its clock moves to the highest), and a resumed job starts every worker there.
        """
        self._round = self._collective("checkpoint()")
        self._align_clocks()
        return self._save_checkpoint()

    def round_done(self) -> Path | None:
        """End a round of an algorithm that synchronises with :meth:`sync` instead of :meth:`clock`
        (collective): count it in :attr:`round` and, every ``checkpoint_every`` rounds, save a
        checkpoint (returns its folder on worker 0).

        Call it right after a :meth:`sync` (no push in between), where the tables hold all the
        state that resuming at this round needs: the sync has already delivered every update to
        its owner, so the servers save at once. Every worker's round moves to one past the highest
        of any worker (they agree on whether this round saves).
        """
        self._round = self._collective("round_done()") + 1
        every = self.cfg.checkpoint_every
        if every and self._round % every == 0:
            return self._save_checkpoint()
        return None

    def _save_checkpoint(self) -> Path | None:
        rt = self._rt
        root = checkpoint.root_of(self.cfg)
        tmp = checkpoint.tmp_folder(root, self._round, rt.job_id)
        if self.is_master:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        barrier(rt.role_comm)
        files = []
        if rt.node_role_comm.rank == 0:
            for client in self._clients.values():
                files += client.call(op="save", dir=str(tmp.resolve()))["files"]
        parts = allgather_obj(rt.role_comm, files)
        final = None
        if self.is_master:
            manifest = checkpoint.new_manifest(self._round, self._specs, self.cfg, [f for p in parts for f in p],
                                               self.nworker, self.nserver, self.nnodes, rt.job_id)
            final = checkpoint.finalize(tmp, checkpoint.final_folder(root, self._round), manifest)
        barrier(rt.role_comm)
        return final

    def _resolve_resume(self) -> None:
        """Find and check the checkpoint to resume from (worker 0), and tell every worker."""
        found = error = None
        if self.cfg.resume and self.is_master:
            try:
                path = checkpoint.find_latest(Path(self.cfg.resume))
                manifest = checkpoint.verify(path)
                checkpoint.check_config(manifest, self.cfg)
                found = (str(path.resolve()), manifest)
            except (CheckpointError, ConfigError) as exc:
                error = (type(exc).__name__, str(exc))
        found, error = bcast_obj(self._rt.role_comm, (found, error))
        if error is not None:
            raise (ConfigError if error[0] == "ConfigError" else CheckpointError)(error[1])
        if found is not None:
            self._resume, self._manifest = Path(found[0]), found[1]
            self.start_round = int(self._manifest["round"])
            self._round = self.start_round
            moved = checkpoint.layout_change(self._manifest, self.nworker, self.nserver, self.nnodes)
            self.log(f"resuming from {self._resume} (round {self.start_round}{moved})")
