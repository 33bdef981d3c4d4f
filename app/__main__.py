"""`python -m app` is the same as the `aqua-metrics` console script."""

from app.entry import main

raise SystemExit(main())
