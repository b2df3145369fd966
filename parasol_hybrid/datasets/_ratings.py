"""A random train/test split of ``user item rating`` lines (MF and ALS read MovieLens-100K this way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["split_ratings"]


def split_ratings(source: Path, out_dir: Path, test_fraction: float = 0.2, seed: int = 0,
                  skip_header: bool = True) -> tuple[Path, Path]:
    """Write a random train/test split of ``user item rating`` lines as ``train.tsv`` and ``test.tsv``.

    Reuses the files when they already exist with the same parameters.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = out_dir / "train.tsv", out_dir / "test.tsv"
    stamp = out_dir / ".split"
    key = f"{Path(source).resolve()} {test_fraction} {seed}\n"
    if train.exists() and test.exists() and stamp.exists() and stamp.read_text() == key:
        return train, test
    lines = Path(source).read_text().splitlines()
    if skip_header:
        lines = lines[1:]
    rows = ["\t".join(line.split()[:3]) for line in lines if line.strip()]
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(rows)) < test_fraction
    train.write_text("".join(r + "\n" for r, t in zip(rows, is_test) if not t))
    test.write_text("".join(r + "\n" for r, t in zip(rows, is_test) if t))
    stamp.write_text(key)
    return train, test
