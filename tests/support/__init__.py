"""Test-only stand-ins: OCI API and model-deployment servers, process drivers, payloads.

They are built on the generic pieces in `testkit/` (ports, background server, waiting, stack
driver, signature verifier, credentials), which bench/ shares; the modules here that moved there
(binaries, cavage, jws, oci_credentials, stack) remain as aliases. Never imported by app/.
"""
