"""No crash at shutdown: no numpy view and no thread can outlive the memory it reads.

Segment views hold the mapping (``np.frombuffer`` keeps a buffer export, so
``mmap.close()`` cannot unmap under a live view), the watchdog is joined
before the clock board is closed, and sockets and the ZeroMQ context go
before shards are unmapped. Old code crashed (SIGSEGV) in each case below.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parasol_hybrid.testing import run_launcher, write_config

JOBS = Path(__file__).resolve().parent / "jobs"
pytestmark = pytest.mark.timeout(120)


def test_a_view_of_a_segment_stays_readable_after_close():
    code = textwrap.dedent("""
        import numpy as np
        from parasol_hybrid.tables.segment import Segment, segment_name
        seg = Segment.create(segment_name("abcdef12", "viewtest"), (1000, 64), np.float64)
        seg.unlink()
        seg.array[...] = 2.0
        view = seg.array[10:20]
        seg.close()
        view += 1.0
        print(float(view.sum()))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert float(done.stdout) == 10 * 64 * 3.0


@pytest.mark.parametrize("nodes", [1, 2])
def test_watchdog_paused_across_finish_does_not_crash(tmp_path, nodes):
    """Each rank's watchdog is paused between two reads of the board and released after finish() began."""
    nserver = nodes
    cfg = write_config(tmp_path, nworker=2, nserver=nserver, simulate_nodes=nodes, output=str(tmp_path / "out"),
                       mode="run", max_seconds=0.5)
    done = run_launcher(["--config", str(cfg), "python", str(JOBS / "shutdown_race_job.py")], 90)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stderr}"
    assert len(list(tmp_path.glob("released.*"))) == 2 + nserver, "not every rank's watchdog was paused"
    assert (tmp_path / "out" / "metrics.json").exists()
