"""Moved to `testkit.oci_credentials` (shared with bench/); this alias keeps older imports working.

New code imports `testkit.oci_credentials` directly. The alias makes both names the same module object.
"""

import sys

import testkit.oci_credentials

sys.modules[__name__] = testkit.oci_credentials
