"""The parts of :class:`parasol_hybrid.paralg` (the public face is :mod:`parasol_hybrid.algorithm`), one job per
module. Each is a mixin: ``paralg`` inherits them all and its ``__init__`` sets the state they share, so a method
of one part may call another part's (``self._collective(...)``) without importing it.

- :mod:`.identity`     who this worker is: ``worker_id``, ``nworker``, ``is_master``, ``staleness``...
- :mod:`.input`        ``load`` and the timing of input (``load_seconds`` in the metrics)
- :mod:`.collectives`  the check that starts every collective, ``allreduce``, ``allgather``, ``vocabulary``
- :mod:`.tables`       declaring tables (``table``, ``sparse_table``) and the ``pull``/``push`` facade
- :mod:`.clocks`       ``clock``, ``sync``, ``round``, the clock hooks and the bulk-synchronous rule
- :mod:`.checkpoints`  ``checkpoint``, ``round_done``, and resuming from a checkpoint
- :mod:`.output`       the output folder, ``write_json``, ``write_metrics``, ``save_table``, ``log``, ``progress``

None of them imports another, except :mod:`.collectives`, which takes the input timer from :mod:`.input`.
"""
