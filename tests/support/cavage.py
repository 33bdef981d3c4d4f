"""Moved to `testkit.cavage` (shared with bench/); this alias keeps older imports working.

New code imports `testkit.cavage` directly. The alias makes both names the same module object.
"""

import sys

import testkit.cavage

sys.modules[__name__] = testkit.cavage
