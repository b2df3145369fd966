"""``python -m benchmarks``: the same as ``scripts/bench``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
