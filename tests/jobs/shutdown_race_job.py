"""The lifecycle job with the shutdown race made certain: each rank's watchdog is paused between its two
reads of a peer's state on the clock board (a worker's when it enters ``Runtime.finish()``, a
server's when it starts waiting for the end), and released 0.3 s after ``Runtime.finish()`` began.

Before the fix, ``finish()`` stopped the watchdog without joining it and unmapped the board, so the
released thread read unmapped memory (SIGSEGV). Each released rank writes ``released.<pid>`` next to
the config, to prove the pause happened.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle_job import Lifecycle  # noqa: E402

from parasol_hybrid import run  # noqa: E402
from parasol_hybrid.cluster import runtime, watchdog  # noqa: E402

armed, entered, release = threading.Event(), threading.Event(), threading.Event()
_gone = watchdog._gone
_finish = runtime.Runtime.finish
_begin_end = runtime.Runtime.begin_end


def paused_gone(pid: int) -> bool:
    if armed.is_set() and not entered.is_set():
        entered.set()
        release.wait(10)
        marks = Path(os.environ["PARASOL_CONFIG"]).resolve().parent
        (marks / f"released.{os.getpid()}").write_text("released\n")
        return True  # "gone": the watchdog reads the peer's state once more
    return _gone(pid)


def begin_end(self) -> None:
    armed.set()  # a server calls this while it serves: its watchdog pauses while the workers still run
    _begin_end(self)


def finish(self) -> None:
    armed.set()
    if not entered.wait(10):  # peers cannot be finished yet: this rank is not in the final barrier
        raise RuntimeError("the watchdog never checked a peer")
    threading.Timer(0.3, release.set).start()
    _finish(self)
    time.sleep(1.0)  # the rest of this rank's life


if __name__ == "__main__":  # (the launcher imports this file to read the options: patch only in the ranks)
    watchdog._gone = paused_gone
    runtime.Runtime.finish = finish
    runtime.Runtime.begin_end = begin_end
    run(Lifecycle)
