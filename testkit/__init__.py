"""Test and benchmark stand-ins shared by `tests/` and `bench/`.

Why a package of its own: the benchmarks need the same real-process helpers as the tests (free
ports, the stack driver, the signature verifier, offline OCI credentials), but `bench/` must not
import from `tests/` (a test package is not a library, and pytest's conftest machinery must not
leak into a benchmark run). So the generic pieces live here, at the top of the repository, and
both sides import them: `from testkit.ports import free_port`. It is never installed or shipped
(the wheel holds `app/` only); tests and benchmarks find it because they run from the repository.

What is here (one job per module):

* `ports`             loopback ports: `reserve_port()` holds a port for a child process that binds
                      it itself, so no one else can take it first; `free_port()` with
                      `retry_on_port_conflict` where a retry is wanted instead; `refused_port()`.
* `background_server` a real HTTP/1.1 server on 127.0.0.1 in a daemon thread (context manager).
* `waiting`           `wait_until(condition, timeout)`: poll with a deadline instead of sleeping.
* `binaries`          finds the real Prometheus/promtool binaries (never skips when missing).
* `stack`             drives `aqua-metrics start` (supervisord, proxy, Prometheus) as a user would.
* `cavage`, `jws`     the independent draft-cavage signature verifier and a JWS checker, so
                      signatures are never "checked" by re-running the signer under test.
* `oci_credentials`   offline OCI credentials (API key, session token, resource principal).
* `datascience_api`, `monitoring_api`  signature-checking loopback stand-ins of the OCI Data
                      Science (model deployments) and OCI Monitoring APIs: benchmarks drive them.
* `receivers`         real remote-write receivers on loopback (the central-store feature), and the
                      gates in front of them (bearer token via vmauth, tenant headers).

What is not here: the stand-ins that only tests use
(signed upstream, instance metadata, recording servers...) stay in `tests/support/`, built on these.
"""
