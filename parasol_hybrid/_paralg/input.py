"""Input: :meth:`load` (this worker's part of the input files), and the timer behind ``load_seconds``."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from ..cluster.collectives import allgather_obj
from ..errors import InputError

if TYPE_CHECKING:
    from ..cluster.runtime import Runtime
    from ..config import Config

__all__ = ["InputMixin", "input_time"]


def input_time(method):
    """Add the wall time of ``method`` (``load``, ``vocabulary``) to the worker's ``load_seconds``.
    Only the outermost of nested calls counts (a load that calls ``vocabulary`` is counted once)."""
    @functools.wraps(method)
    def timed(self, *args, **kwargs):
        if self._in_input:
            return method(self, *args, **kwargs)
        self._in_input = True
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._in_input = False
            self._load_seconds += time.perf_counter() - start
    return timed


class InputMixin:
    """``load``: this worker's part of the input, read by byte ranges or partitioned by rows and columns."""

    _rt: Runtime
    cfg: Config
    _in_input: bool         # inside a timed input call (nested calls count once)
    _load_seconds: float    # this worker's wall time in load() and vocabulary()

    @input_time
    def load(self, path=None, pattern: str = "linesplit", format: str = "lines",  # noqa: A002
             shared_ids: bool = False, weight_required: bool = True, shuffle: bool = False):
        """Load this worker's part of the input (default: the config's ``input``).

        ``pattern``: ``linesplit`` (byte ranges of the files, one per worker),
        ``fmap`` / ``smap`` / ``fsmap`` (rating or edge triples partitioned by
        row, column or both). ``format``: ``lines`` (list of ``Line``),
        ``ratings``, ``libsvm`` (0/1 labels), ``regression`` (libsvm rows with real-valued
        labels), ``documents`` (one document a line, lower-cased ``[a-z]`` words of 3+ letters:
        ``Documents``) or ``words`` (a Counter). ``fmap``-style patterns imply ``ratings``.

        With ``fmap`` / ``smap`` / ``fsmap`` the load is a collective: each worker parses only its byte
        range (compiled), the ids become rows of the job's vocabulary, and each triple is sent to its
        owner once (:mod:`parasol_hybrid.data.share`). The result is a
        :class:`~parasol_hybrid.data.share.RatingsShare`: ``u``, ``i`` (rows), ``values``, the
        vocabularies ``row_ids`` / ``col_ids`` (sorted as strings, the same on every worker; with
        ``shared_ids`` one vocabulary of the ids of both columns, for graphs) and ``bad_lines`` (this
        worker's byte range's). ``rows`` / ``cols`` give each triple's ids, as before. With
        ``weight_required`` False a line may have two fields (weight 1), as edge lists do. With
        ``shuffle`` each worker's triples come in a random order of runs of 64 consecutive triples (seeded by
        the config's ``seed`` and the worker id) instead of the files' order: what SGD wants, without a
        second copy of the share.
        """
        from .. import data

        spec = path if path is not None else self.cfg.input
        if spec is None:
            raise InputError("no input: pass a path to load() or set the config key 'input'")
        files = data.expand_inputs(spec)
        policy = self.cfg.on_bad_line
        if pattern in ("fmap", "smap", "fsmap"):
            self._collective(f"load(pattern={pattern!r}, shared_ids={bool(shared_ids)}, shuffle={bool(shuffle)})")
            from ..data.share import load_share
            own_shm = self.cfg.load_exchange == "shm"
            node_of = allgather_obj(self._rt.role_comm, self.node_id) if own_shm else None
            return load_share(self._rt.role_comm, files, pattern, on_bad_line=policy, shared_ids=shared_ids,
                              weight_required=weight_required, node_of=node_of,
                              job_id=self._rt.job_id if own_shm else None,
                              shuffle_seed=[self.cfg.seed, self.worker_id, 1 << 20] if shuffle else None)
        if pattern != "linesplit":
            raise InputError(f"unknown load pattern {pattern!r} (known: linesplit, fmap, smap, fsmap)")
        lines = data.read_lines(files, self.worker_id, self.nworker)
        if format == "lines":
            return list(lines)
        if format == "ratings":
            from ..data.scan_ratings import scan_ratings
            return scan_ratings(files, self.worker_id, self.nworker, on_bad_line=policy,
                                weight_required=weight_required).as_ratings()
        if format == "libsvm":
            from ..data.scan_text import scan_libsvm
            return scan_libsvm(files, self.worker_id, self.nworker, on_bad_line=policy)
        if format == "regression":
            from ..data.scan_text import scan_libsvm
            return scan_libsvm(files, self.worker_id, self.nworker, on_bad_line=policy, labels="real")
        if format == "documents":
            from ..data.scan_text import scan_documents
            return scan_documents(files, self.worker_id, self.nworker)
        if format == "words":
            from ..data.scan_text import scan_words
            return scan_words(files, self.worker_id, self.nworker)
        raise InputError(f"unknown load format {format!r} (known: lines, ratings, libsvm, regression, documents, "
                         f"words)")
