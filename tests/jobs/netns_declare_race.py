"""Job: a sparse table is pushed to its remote owner right after it is declared (2 workers, 2 nodes).

Declaring a table is collective over the workers (an allgather), and then each
node's first worker asks its own node's servers to create their shards. Only
the node's workers wait for that to finish. Here node 1's servers are made to
create their shards 1.5 s late, as a slower host would. Node 0's worker then
pushes straight to server 1, and server 1 must already know the table.

Writes ``<output>/metrics.json`` with ``sum`` (expected 20: two workers push
1 to keys 0..9).
"""

from __future__ import annotations

import time

import numpy as np

from parasol_hybrid import paralg, run


class DeclareThenPush(paralg):
    def solve(self) -> None:
        if self.node_id == 1:  # a slower host: its servers create their shards late
            for client in self._clients.values():
                call = client.call

                def late(_call=call, **msg):
                    if msg.get("op") == "create":
                        time.sleep(1.5)
                    return _call(**msg)

                client.call = late
        table = self.sparse_table("race", capacity=100)
        table.push(np.arange(10, dtype=np.int64), np.ones((10, 1), dtype=np.int64))
        self.sync()
        present, values = table.items() if self.is_master else (None, None)
        if self.is_master:
            self.write_metrics({"sum": int(values.sum()), "keys": len(present)})
        self.sync()


if __name__ == "__main__":
    run(DeclareThenPush)
