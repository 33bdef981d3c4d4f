"""`python -m grafana.generator [--check]`: write, or check, the generated files."""

import sys

from grafana.generator.cli import main

sys.exit(main())
