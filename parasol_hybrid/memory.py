"""Memory of a node's processes, read from /proc: how much the tables cost, counted once.

``rss`` counts a shared page in every process that maps it; ``pss``
(proportional set size) splits it between them, so the sum of the PSS of a
node's processes counts every table once. ``shm_pss`` is the part of a
process's PSS that is parasol shared memory (segments named ``parasol-…``,
mapped after they were unlinked show as ``(deleted)``).
"""

from __future__ import annotations

__all__ = ["process_memory"]


def process_memory(pid: int) -> dict[str, int]:
    """Bytes of ``rss``, ``pss`` and ``shm_pss`` (parasol segments) of process ``pid``."""
    rss = pss = shm = 0
    current_is_shm = False
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            first = line.split(None, 1)[0]
            if not first.endswith(":"):  # a mapping header: address perms offset dev inode path
                parts = line.split()
                path = parts[5] if len(parts) > 5 else ""
                current_is_shm = path.startswith("/dev/shm/parasol-")
            elif first == "Rss:":
                rss += int(line.split()[1]) * 1024
            elif first == "Pss:":
                kb = int(line.split()[1]) * 1024
                pss += kb
                if current_is_shm:
                    shm += kb
    return {"rss": rss, "pss": pss, "shm_pss": shm}
