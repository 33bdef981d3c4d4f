"""`python -m app` is the same as the `aqua-metrics` console script."""

from app.cli import main

raise SystemExit(main())
