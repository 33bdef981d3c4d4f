"""Moved to `testkit.binaries` (shared with bench/); this alias keeps older imports working.

New code imports `testkit.binaries` directly. The alias makes both names the same module object.
"""

import sys

import testkit.binaries

sys.modules[__name__] = testkit.binaries
