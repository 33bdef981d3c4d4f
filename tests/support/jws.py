"""Moved to `testkit.jws` (shared with bench/); this alias keeps older imports working.

New code imports `testkit.jws` directly. The alias makes both names the same module object.
"""

import sys

import testkit.jws

sys.modules[__name__] = testkit.jws
