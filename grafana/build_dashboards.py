"""Writes (or `--check`s) the generated dashboards and alert rules: `python -m grafana.generator`.

Kept so `.venv/bin/python grafana/build_dashboards.py [--check]` still works from any directory;
the generator itself is the `grafana/generator/` package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grafana.generator.cli import main

if __name__ == "__main__":
    sys.exit(main())
