"""``python -m parasol_hybrid.datasets --out data``: write every demo and test data set."""

from ._prepare import main

raise SystemExit(main())
