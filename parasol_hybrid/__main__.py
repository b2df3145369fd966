"""``python -m parasol_hybrid``: the same as the ``run_parasol`` command."""

from .launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
