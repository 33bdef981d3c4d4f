"""Moved to `testkit.stack` (shared with bench/); kept so older imports still resolve.

New code imports `testkit.stack` / `testkit.ports` directly.
"""

from testkit.ports import free_port
from testkit.stack import Stack, base_environment, run_start, short_tmp_dir

__all__ = ["Stack", "base_environment", "free_port", "run_start", "short_tmp_dir"]
