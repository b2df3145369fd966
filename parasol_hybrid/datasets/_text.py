"""Text corpora for LDA: gensim's Lee news corpus cut into train and held-out documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._files import write_whole
from ._sources import gensim_corpus

__all__ = ["lee_split"]


def lee_split(out_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """Split gensim's ``lee_background.cor`` (300 documents, one per line) by document into
    ``train.txt`` and ``test.txt``.

    A document goes to the test file with probability ``test_fraction``
    (numpy ``default_rng(seed)``); blank lines are dropped; order is kept.
    The files are rewritten with the same content each time.
    """
    lines = [ln for ln in gensim_corpus("lee_background.cor").read_text(encoding="utf-8").splitlines()
             if ln.strip()]
    is_test = np.random.default_rng(seed).random(len(lines)) < test_fraction
    out_dir = Path(out_dir)
    train = write_whole(out_dir / "train.txt", "".join(ln + "\n" for ln, t in zip(lines, is_test) if not t))
    test = write_whole(out_dir / "test.txt", "".join(ln + "\n" for ln, t in zip(lines, is_test) if t))
    return train, test
