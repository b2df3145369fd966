"""Checkpoints: every table's shards (values and optimiser state) saved atomically, with a manifest.

Layout of a checkpoint root (``checkpoint_dir``, default ``<output>/checkpoints``)::

    ckpt-000000004/
        manifest.json          round, clock, table specs, config fingerprint, files with sizes and sha256
        t0s0.npy t0s0.state.npy t0s1.npy ...
    ckpt-000000006/ ...

Each shard's files are written by the server that owns it, into a temporary
folder; when every file is written and fsync'ed, worker 0 writes the manifest
and renames the folder into place (an atomic rename), so a crash while
writing leaves the previous checkpoint whole. The two newest checkpoints are
kept. A checkpoint is used only after every file's size and hash match the
manifest and the config matches the one it was made with.

The layout may change on resume (``nworker``, ``nserver``, ``simulate_nodes``,
the hosts): tables are striped by row (global row ``k`` lives in shard
``k % S`` at local row ``k // S``), so a shard of the new layout is gathered
row by row from the saved shards of the old one (:func:`gather_shard`, reading
the files memory-mapped: a server reads only the rows it owns). Sparse tables
place keys by hash over the servers: they resume with another ``nworker`` or
node count, but not with another ``nserver``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from .errors import CheckpointError, ConfigError

__all__ = ["CheckpointError", "MANIFEST", "root_of", "fingerprint", "tmp_folder", "final_folder", "write_shard",
           "finalize", "find_latest", "verify", "check_config", "check_table", "load_shard", "gather_shard",
           "refuse_option", "new_manifest", "layout_change"]

MANIFEST = "manifest.json"
KEEP = 2
#: config keys that may change between a run and its resumption (the layout keys: tables are re-sharded on load)
MAY_CHANGE = {"resume", "rounds", "output", "checkpoint_every", "checkpoint_dir", "log_every", "interface",
              "nworker", "nserver", "simulate_nodes"}
#: the fields of a table spec that may differ from the checkpoint's (the layout)
_LAYOUT_FIELDS = {"nshards"}
_FOLDER = re.compile(r"^ckpt-(\d{9})$")


def root_of(cfg) -> Path:
    """The checkpoint root of a job."""
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(cfg.output) / "checkpoints"


def fingerprint(cfg) -> dict:
    """The config keys a checkpoint must be resumed with."""
    return {k: v for k, v in cfg.as_dict().items() if k not in MAY_CHANGE}


def new_manifest(round_: int, specs: list, cfg, files: list[dict], nworker: int, nserver: int, nodes: int,
                 job_id: str) -> dict:
    """The manifest of the checkpoint after round ``round_``: the table specs, the config fingerprint, the
    files (with sizes and hashes), the job's layout."""
    return {"round": round_, "tables": [s.as_dict() for s in specs], "config": fingerprint(cfg), "files": files,
            "nworker": nworker, "nserver": nserver, "nodes": nodes,
            "striping": "global row k is in shard k % nshards at local row k // nshards",
            "job_id": job_id, "created": time.time()}


def layout_change(manifest: dict, nworker: int, nserver: int, nodes: int) -> str:
    """``""`` if the checkpoint was saved with this layout, else what changed (for the resume's log line)."""
    then = (manifest.get("nworker"), manifest.get("nserver"), manifest.get("nodes"))
    if then == (nworker, nserver, nodes):
        return ""
    return (f"; saved with {then[0]} worker(s), {then[1]} server(s) on {then[2]} node(s), "
            f"now {nworker}, {nserver} on {nodes}: tables re-sharded")


def final_folder(root: Path, round_: int) -> Path:
    return Path(root) / f"ckpt-{round_:09d}"


def tmp_folder(root: Path, round_: int, job_id: str) -> Path:
    return Path(root) / f"ckpt-{round_:09d}.tmp-{job_id}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, array: np.ndarray) -> dict:
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_shard(folder: Path, table: int, shard: int, data: np.ndarray, state: np.ndarray) -> list[dict]:
    """Write one shard's values and state into ``folder``; returns the file records for the manifest."""
    folder = Path(folder)
    return [_write(folder / f"t{table}s{shard}.npy", data), _write(folder / f"t{table}s{shard}.state.npy", state)]


def finalize(tmp: Path, final: Path, manifest: dict) -> Path:
    """Write the manifest into ``tmp``, rename it to ``final`` atomically, drop old checkpoints."""
    tmp, final = Path(tmp), Path(final)
    path = tmp / MANIFEST
    with open(path, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    done = sorted(p for p in final.parent.iterdir() if _FOLDER.match(p.name))
    for old in done[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_latest(root: Path) -> Path:
    """The newest complete checkpoint under ``root`` (or ``root`` itself if it is one)."""
    root = Path(root)
    if (root / MANIFEST).exists():
        return root
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {root} does not exist")
    done = sorted(p for p in root.iterdir() if _FOLDER.match(p.name) and (p / MANIFEST).exists())
    if not done:
        raise CheckpointError(f"no complete checkpoint in {root} (a complete one is a ckpt-* folder with {MANIFEST})")
    return done[-1]


def verify(folder: Path) -> dict:
    """Load the manifest and check every file's size and hash; a damaged checkpoint is refused."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {folder}: cannot read {MANIFEST}: {exc}") from None
    for rec in manifest.get("files", []):
        path = folder / rec["name"]
        if not path.exists():
            raise CheckpointError(f"checkpoint {folder}: file {rec['name']} is missing")
        size = path.stat().st_size
        if size != rec["bytes"]:
            raise CheckpointError(f"checkpoint {folder}: file {rec['name']} has {size} bytes, the manifest says "
                                  f"{rec['bytes']} (truncated or damaged); refusing to resume from it")
        if _sha256(path) != rec["sha256"]:
            raise CheckpointError(f"checkpoint {folder}: file {rec['name']} does not match its sha256 in the "
                                  f"manifest (damaged); refusing to resume from it")
    return manifest


def check_config(manifest: dict, cfg) -> None:
    """Raise ConfigError naming the keys whose values differ from the checkpoint's."""
    saved = {k: v for k, v in manifest.get("config", {}).items() if k not in MAY_CHANGE}
    now = fingerprint(cfg)
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, config {now.get(k)!r}" for k in diff)
        raise ConfigError(f"the config does not match the checkpoint it resumes from ({shown})")


def check_table(manifest: dict, folder: Path, spec, sparse: bool = False) -> int:
    """Check that ``spec`` declares table ``spec.index`` as the checkpoint saved it; returns the saved shard count.

    Only the layout (``nshards``) may differ; a different name, shape, dtype,
    rule, init or seed is refused with a CheckpointError listing the fields.
    A part of a sparse table (``sparse``) must keep its shard count too.
    """
    tables = manifest.get("tables", [])
    if spec.index >= len(tables):
        raise CheckpointError(f"table {spec.name!r} (number {spec.index}) is not in the checkpoint {folder} "
                              f"(it has {len(tables)} tables)")
    saved, now = tables[spec.index], json.loads(json.dumps(spec.as_dict()))
    if sparse and saved.get("nshards") != now["nshards"]:
        name = spec.name.split("#", 1)[0]
        raise CheckpointError(f"sparse table {name!r}: the checkpoint {folder} was saved with nserver "
                              f"{saved.get('nshards')}, this job has nserver {now['nshards']}; a sparse table's keys "
                              f"are placed by hash over the servers, so it resumes only with the same nserver")
    diff = sorted(k for k in set(saved) | set(now) if k not in _LAYOUT_FIELDS and saved.get(k) != now.get(k))
    if diff:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, job {now.get(k)!r}" for k in diff)
        raise CheckpointError(f"table {spec.name!r} (number {spec.index}) is not declared as in the checkpoint "
                              f"{folder} ({shown})")
    return int(saved["nshards"])


def _rows_of(rows: int, nshards: int, shard: int) -> int:
    return len(range(shard, rows, nshards))


def _open_saved(folder: Path, spec, shard: int, nshards: int) -> tuple[np.ndarray, np.ndarray]:
    """Saved shard ``shard`` (of ``nshards``) of a table, memory-mapped, its shapes checked against ``spec``."""
    try:
        data = np.load(folder / f"t{spec.index}s{shard}.npy", mmap_mode="r", allow_pickle=False)
        state = np.load(folder / f"t{spec.index}s{shard}.state.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder}: cannot load table {spec.name!r} shard {shard}: {exc}") from None
    n = _rows_of(spec.rows, nshards, shard)
    if data.dtype.name != spec.dtype or data.shape != (n, spec.dim):
        raise CheckpointError(f"checkpoint {folder}: table {spec.name!r} shard {shard} of {nshards} is {data.dtype} "
                              f"{data.shape}, the job declares {spec.dtype} {(n, spec.dim)}")
    if state.dtype.name != spec.dtype or state.shape != (n, spec.state_slots, spec.dim):
        raise CheckpointError(f"checkpoint {folder}: table {spec.name!r} shard {shard} of {nshards} has state "
                              f"{state.dtype} {state.shape}, the job's rule needs {(n, spec.state_slots, spec.dim)}")
    return data, state


def gather_shard(folder: Path, spec, shard: int, saved_nshards: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and state of shard ``shard`` of ``spec.nshards``, gathered from a checkpoint saved with
    ``saved_nshards`` shards: global row ``k`` is saved in shard ``k % saved_nshards`` at local row
    ``k // saved_nshards``. Only the rows this shard owns are read (the files are memory-mapped)."""
    folder, old = Path(folder), int(saved_nshards)
    n = _rows_of(spec.rows, spec.nshards, shard)
    data = np.empty((n, spec.dim), dtype=spec.dtype)
    state = np.empty((n, spec.state_slots, spec.dim), dtype=spec.dtype)
    rows = np.arange(n, dtype=np.int64) * spec.nshards + shard  # the global rows of this shard
    src = rows % old
    for o in range(min(old, spec.rows)):
        pick = src == o
        if not pick.any():
            continue
        saved, saved_state = _open_saved(folder, spec, o, old)
        local = rows[pick] // old
        if pick.all() and n == saved.shape[0]:  # the same layout: the whole file
            data[...] = saved
            state[...] = saved_state
        else:
            data[pick] = saved[local]
            state[pick] = saved_state[local]
        del saved, saved_state
    return data, state


def refuse_option(algorithm: str, why: str):
    """A ``checkpoint_every`` option for an algorithm that does not checkpoint: any value but 0 is a
    ConfigError naming the algorithm, raised where the config is loaded (before any rank starts)."""
    from .config import Option

    return Option(int, 0, f"must be 0: {algorithm} does not save checkpoints",
                  check=lambda v: None if v == 0 else f"must be 0: {algorithm} does not save checkpoints ({why})")


def load_shard(folder: Path, spec, shard: int) -> tuple[np.ndarray, np.ndarray]:
    """The saved values and state of one shard, checked against the table's spec."""
    folder = Path(folder)
    try:
        data = np.load(folder / f"t{spec.index}s{shard}.npy", allow_pickle=False)
        state = np.load(folder / f"t{spec.index}s{shard}.state.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder}: cannot load table {spec.name!r} shard {shard}: {exc}") from None
    if data.dtype.name != spec.dtype or data.ndim != 2 or data.shape[1] != spec.dim:
        raise CheckpointError(f"checkpoint {folder}: table {spec.name!r} shard {shard} is {data.dtype} "
                              f"{data.shape}, the job declares {spec.dtype} × {spec.dim}")
    return data, state
