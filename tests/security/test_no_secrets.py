"""No secret in any log line, error body or metric label, in every auth mode and in the whole stack.

Each scenario runs real processes (`python -m app proxy`, `check`, `start`) with real credentials
(an API key with a pass_phrase, a session token, a resource principal, Prometheus basic auth, a
Grafana admin password), drives them through successes and every failure path (refusals, resets,
garbage, timeouts, oversized bodies, stale and broken tokens, bad pass phrases), and captures every
log line, every response (status, headers, body), /metrics, Prometheus' labels, targets and
status pages, and the command lines of the stack's processes. None may contain private key material
(any PEM body line, in any serialisation), a token (or its payload or signature part), a signature
or Authorization value seen by the deployment, a pass phrase or a password.

The Grafana admin password is the one deliberate exception: generated on the first start, it is
printed once, in one announced line, so a user without shell access can sign in; never again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import pytest

from testkit import jws
from testkit.cavage import KeyRegistry
from testkit.oci_credentials import (
    TokenIssuer,
    make_api_key_profile,
    make_resource_principal_v22,
    make_security_token_profile,
)
from testkit.stack import Stack, base_environment, free_port, short_tmp_dir
from testkit.waiting import wait_until
from tests.support.fake_grafana import install_fake_grafana
from tests.support.proxy_process import ProxyProcess, sample_value
from tests.support.recording_server import HostileUpstream
from tests.support.secret_scan import SecretSet
from tests.support.signed_upstream import FaultMode, SignedUpstream


def _strong(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


class Evidence:
    """Everything the product showed the outside world, as (where, text) pairs."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: str | bytes) -> None:
        self.items.append(
            (where, text.decode(errors="replace") if isinstance(text, bytes) else text)
        )

    def response(self, where: str, response: httpx.Response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.add(where, f"{response.status_code}\n{headers}\n\n{response.text}")

    def command(
        self, where: str, argv: list[str], env: dict[str, str]
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        self.add(f"{where} (exit {result.returncode})", result.stdout + result.stderr)
        return result


def _assert_clean(secrets_: SecretSet, evidence: Evidence) -> None:
    assert len(secrets_) > 0 and evidence.items
    leaks = secrets_.leaks(evidence.items)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:20])


def _exercise_proxy(proxy: ProxyProcess, targets: list[str], evidence: Evidence) -> None:
    """Every route, every target, with and without gzip, plus malformed input."""

    async def go():
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            for target in targets:
                for encoding in ("gzip", "identity"):
                    response = await client.get(
                        f"/targets/{target}/metrics",
                        headers={
                            "accept-encoding": encoding,
                            "x-prometheus-scrape-timeout-seconds": "2",
                        },
                    )
                    evidence.response(f"scrape {target} ({encoding})", response)
            for path in ("/sd", "/metrics", "/readyz", "/healthz", "/targets/nope/metrics", "/x"):
                evidence.response(path, await client.get(path))
            evidence.response("POST", await client.post("/targets/md/metrics", content=b"x"))

    asyncio.run(go())
    evidence.add("/metrics", proxy.metrics())


def _signatures_seen(secrets_: SecretSet, *upstreams) -> None:
    for upstream in upstreams:
        for request in upstream.requests:
            secrets_.add_authorization("signature", request.authorization)


def test_api_key_with_pass_phrase(tmp_path):
    passphrase = _strong("pass-phrase")
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path, passphrase=passphrase)
    creds.register_with(registry)
    secrets_ = SecretSet()
    secrets_.add_private_key("api key", creds.key.private_key, creds.key.private_pem())
    secrets_.add("pass_phrase", passphrase)
    evidence = Evidence()
    with (
        SignedUpstream(registry) as md,
        SignedUpstream(KeyRegistry()) as refused,
        SignedUpstream(registry) as reset,
        SignedUpstream(registry) as garbage,
        SignedUpstream(registry) as slow,
        SignedUpstream(registry) as big,
    ):
        reset.set_faults(mode=FaultMode.RESET_MID_BODY)
        garbage.set_faults(mode=FaultMode.GARBAGE)
        slow.set_faults(delay_seconds=5)
        big.set_faults(mode=FaultMode.OVERSIZED, oversized_bytes=1_000_000)
        upstreams = {"md": md, "refused": refused, "reset": reset, "garbage": garbage}
        upstreams |= {"slow": slow, "big": big}
        env = {
            "TARGETS": ",".join(f"{name}={up.url}" for name, up in upstreams.items()),
            "OCI_CONFIG_FILE": str(creds.config_path),
            "LOG_LEVEL": "debug",
            "UPSTREAM_TIMEOUT_SECONDS": "1",
            "MAX_RESPONSE_BYTES": "100000",
        }
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            _exercise_proxy(proxy, list(upstreams), evidence)
            evidence.command("check", [sys.executable, "-m", "app", "check"], proxy.env)
        evidence.add("proxy log", proxy.logs())
        _signatures_seen(secrets_, *upstreams.values())

    # A wrong pass phrase: the error names the setting, never either phrase.
    wrong = _strong("wrong-phrase")
    secrets_.add("wrong pass_phrase", wrong)
    bad_config = tmp_path / "bad-config"
    bad_config.write_text(creds.config_path.read_text().replace(passphrase, wrong))
    bad_env = {**proxy.env, "OCI_CONFIG_FILE": str(bad_config)}
    for command in ("check", "proxy"):
        result = evidence.command(
            f"{command} (bad pass_phrase)", [sys.executable, "-m", "app", command], bad_env
        )
        assert result.returncode == 2, result.stderr
        assert "pass_phrase" in result.stderr and "Traceback" not in result.stderr
    assert len(secrets_.needles["signature"]) >= 6
    _assert_clean(secrets_, evidence)


def _refresh_count(proxy: ProxyProcess, kind: str) -> float:
    """aqua_proxy_signer_<kind>_total of the proxy (kind: refreshes or refresh_failures)."""
    return sample_value(proxy.metrics(), f"aqua_proxy_signer_{kind}_total")


def test_session_token(tmp_path):
    registry = KeyRegistry()
    issuer = TokenIssuer()
    issuer.register_with(registry)
    creds = make_security_token_profile(tmp_path, issuer, ttl_seconds=2)
    secrets_ = SecretSet()
    secrets_.add_private_key("session key", creds.key.private_key, creds.key.private_pem())
    tokens = [creds.token]
    evidence = Evidence()
    with SignedUpstream(registry) as md, SignedUpstream(KeyRegistry()) as refused:
        env = {
            "TARGETS": f"md={md.url},refused={refused.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
            "LOG_LEVEL": "debug",
            "TOKEN_REFRESH_CHECK_SECONDS": "3600",
        }
        # 1. The token expires; the proxy is refused, re-reads the rotated file and retries.
        with ProxyProcess(env, work_dir=tmp_path / "p1") as proxy:
            _exercise_proxy(proxy, ["md"], evidence)
            tokens.append(creds.rotate(ttl_seconds=3600))
            expires = jws.decode_unverified(tokens[0])[1]["exp"]
            wait_until(lambda: time.time() > expires, 30, message="the first token never expired")
            status, body = proxy.get("/targets/md/metrics")
            assert status == 200, body
            assert "retrying once with renewed credentials" in proxy.logs()
            _exercise_proxy(proxy, ["md", "refused"], evidence)
        evidence.add("proxy log 1", proxy.logs())

        # 2. Background renewal, then a token file emptied and one holding garbage.
        env["TOKEN_REFRESH_CHECK_SECONDS"] = "0.3"
        with ProxyProcess(env, work_dir=tmp_path / "p2") as proxy:
            tokens.append(creds.rotate(ttl_seconds=3600))
            wait_until(lambda: _refresh_count(proxy, "refreshes") >= 1, 30, message=proxy.logs)
            _exercise_proxy(proxy, ["md"], evidence)
            creds.token_path.write_text("")

            def readyz_reports_the_failing_refresh() -> tuple[int, bytes] | None:
                status, body = proxy.get("/readyz")
                return (status, body) if b"credential refresh failing" in body else None

            status, body = wait_until(readyz_reports_the_failing_refresh, 30, message=proxy.logs)
            assert status == 503, body
            evidence.add("readyz (refresh failing)", body)
            broken = (
                "eyJhbGciOiJSUzI1NiJ9."
                + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
                + ".c2lnbmF0dXJlLW9mLWEtYnJva2VuLXRva2Vu"
            )
            tokens.append(broken)
            refreshes = _refresh_count(proxy, "refreshes")
            failures = _refresh_count(proxy, "refresh_failures")
            creds.token_path.write_text(broken)

            def broken_token_was_read() -> bool:
                # Adopted (the SDK may not parse it yet), or two more failed attempts, of which at
                # least one began after the write (attempts run one at a time).
                return (
                    _refresh_count(proxy, "refreshes") > refreshes
                    or _refresh_count(proxy, "refresh_failures") >= failures + 2
                )

            wait_until(broken_token_was_read, 30, message=proxy.logs)
            _exercise_proxy(proxy, ["md"], evidence)
        evidence.add("proxy log 2", proxy.logs())
        evidence.command("check", [sys.executable, "-m", "app", "check"], proxy.env)
        _signatures_seen(secrets_, md, refused)
    for token in tokens:
        secrets_.add_jwt("token", token)
    _assert_clean(secrets_, evidence)


def test_resource_principal(tmp_path, monkeypatch):
    registry = KeyRegistry()
    issuer = TokenIssuer()
    issuer.register_with(registry)
    passphrase = _strong("rp-pass-phrase")
    creds = make_resource_principal_v22(tmp_path, issuer, mode="literal", passphrase=passphrase)
    secrets_ = SecretSet()
    secrets_.add_private_key("rp key", creds.key.private_key, creds.key.private_pem())
    secrets_.add("rp pass phrase", passphrase)
    secrets_.add_jwt("rpst", creds.token)
    evidence = Evidence()
    with SignedUpstream(registry) as md, SignedUpstream(KeyRegistry()) as refused:
        env = {"TARGETS": f"md={md.url},refused={refused.url}", "LOG_LEVEL": "debug", **creds.env}
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            _exercise_proxy(proxy, ["md", "refused"], evidence)
            assert proxy.get("/targets/md/metrics")[0] == 200
            evidence.command("check", [sys.executable, "-m", "app", "check"], proxy.env)
        evidence.add("proxy log", proxy.logs())
        _signatures_seen(secrets_, md, refused)
        # A wrong pass phrase and a corrupt key: one line, no material.
        wrong = _strong("rp-wrong-phrase")
        secrets_.add("rp wrong pass phrase", wrong)
        for name, change in {
            "wrong pass phrase": {"OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE": wrong},
            "corrupt key": {
                "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": creds.env[
                    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"
                ].replace("A", "B", 40)
            },
        }.items():
            broken_env = {**proxy.env, **change}
            result = evidence.command(name, [sys.executable, "-m", "app", "proxy"], broken_env)
            assert result.returncode == 2, result.stdout + result.stderr
            assert "Traceback" not in result.stderr
    _assert_clean(secrets_, evidence)


def test_inbound_and_upstream_secrets_are_not_echoed(tmp_path):
    """What a client sends and what a deployment answers never comes back in errors or logs."""
    inbound = _strong("inbound-bearer")
    with HostileUpstream(status=404) as upstream:
        # Default log level: at debug, httpcore logs the upstream's response headers as they are.
        env = {"TARGETS": f"md={upstream.metrics_url()}", "OCI_AUTH": "none"}
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            status, body = proxy.get(
                "/targets/md/metrics",
                {"Authorization": f"Bearer {inbound}", "Cookie": f"session={inbound}"},
            )
            assert status == 502
        secrets_ = SecretSet()
        secrets_.add("inbound credential", inbound)
        secrets_.add("upstream cookie", "s3cr3t-cookie", "dXBzdHJlYW06c2VjcmV0")
        evidence = Evidence()
        evidence.add("error body", body)
        evidence.add("proxy log", proxy.logs())
        evidence.add("upstream saw", json.dumps([r.headers for r in upstream.requests]))
        _assert_clean(secrets_, evidence)


# --- the whole stack ------------------------------------------------------------------------------


def _prometheus_get(stack: Stack, path: str, password: str | None) -> str:
    request = urllib.request.Request(stack.prometheus_url + path)
    if password:
        token = base64.b64encode(f"prometheus:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def _prometheus_evidence(stack: Stack, evidence: Evidence, password: str | None) -> None:
    """Every label name and value Prometheus stored, its targets (with errors) and status pages."""
    names = json.loads(_prometheus_get(stack, "/api/v1/labels", password))["data"]
    assert "deployment" in names
    for name in names:
        quoted = urllib.parse.quote(name, safe="")
        evidence.add(
            f"label {name}", _prometheus_get(stack, f"/api/v1/label/{quoted}/values", password)
        )
    for path in ("/api/v1/targets", "/api/v1/status/config", "/api/v1/status/flags"):
        evidence.add(path, _prometheus_get(stack, path, password))


def _cmdlines(stack: Stack, evidence: Evidence) -> None:
    for pid in stack.processes_using_data_dir():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        evidence.add(f"cmdline of {pid}", cmdline)


def _grafana_user(port: int, password: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/user")
    if password is not None:
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.stack
def test_the_whole_stack_with_a_stand_in_grafana_and_every_secret_set(tmp_path):
    passphrase = _strong("stack-pass-phrase")
    prometheus_password = _strong("prometheus-pw")
    grafana_password = _strong("grafana-admin-pw")
    remote_write_token = _strong("remote-write-token")
    datasource_password = _strong("datasource-pw")
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path, passphrase=passphrase)
    creds.register_with(registry)
    secrets_ = SecretSet()
    secrets_.add_private_key("api key", creds.key.private_key, creds.key.private_pem())
    secrets_.add("pass_phrase", passphrase)
    secrets_.add_password("prometheus password", prometheus_password, user="prometheus")
    secrets_.add_password("grafana admin password", grafana_password, user="admin")
    secrets_.add("remote_write bearer token", remote_write_token)
    secrets_.add_password("datasource password", datasource_password, user="reader")
    evidence = Evidence()
    grafana = install_fake_grafana(short_tmp_dir("aq-gf-"))
    with SignedUpstream(registry) as md, SignedUpstream(KeyRegistry()) as refused:
        stack = Stack.create(
            TARGETS=f"md={md.url},refused={refused.url}",
            OCI_CONFIG_FILE=str(creds.config_path),
            SCRAPE_INTERVAL="1s",
            SCRAPE_TIMEOUT="1s",
            PROMETHEUS_EXPOSE="true",
            PROMETHEUS_BASIC_AUTH_PASSWORD=prometheus_password,
            GF_SECURITY_ADMIN_PASSWORD=grafana_password,
            GRAFANA_ENABLED="true",
            GRAFANA_BIN=str(grafana),
            # Nothing listens there: Prometheus keeps retrying and logging its failures.
            REMOTE_WRITE_URL=f"http://127.0.0.1:{free_port()}/api/v1/write",
            REMOTE_WRITE_BEARER_TOKEN=remote_write_token,
            GRAFANA_DATASOURCE_URL="http://127.0.0.1:9/prometheus",
            GRAFANA_DATASOURCE_BASIC_AUTH_USER="reader",
            GRAFANA_DATASOURCE_BASIC_AUTH_PASSWORD=datasource_password,
        )
        try:
            stack.start()
            stack.wait_for('up{job="vllm",deployment="md"} == 1')
            stack.wait_for('up{job="vllm",deployment="refused"} == 0')
            stack.wait_for('up{job="grafana"} == 1')
            # The user's password really reached the stand-in Grafana, which resolves it as the
            # Grafana binary does (the search below is not vacuous).
            assert _grafana_user(stack.ports["GRAFANA_PORT"], grafana_password) == 200
            _prometheus_evidence(stack, evidence, prometheus_password)
            with urllib.request.urlopen(f"{stack.proxy_url}/metrics", timeout=10) as response:
                evidence.add("proxy /metrics", response.read())
            for command in ("health", "check"):
                evidence.command(command, [sys.executable, "-m", "app", command], stack.env)
            _cmdlines(stack, evidence)
            runtime = stack.data_dir / "runtime"
            for rendered in (
                runtime / "prometheus.yml",
                *runtime.glob("grafana-provisioning/*/*.yaml"),
            ):
                evidence.add(str(rendered), rendered.read_text())
            assert stack.stop() == 0
            evidence.add("stack output", stack.logs())
            _signatures_seen(secrets_, md, refused)
        finally:
            stack.cleanup()
    assert "signature" in secrets_.needles
    _assert_clean(secrets_, evidence)


@pytest.mark.stack
def test_a_generated_password_for_the_stand_in_grafana_is_printed_once_and_never_again():
    grafana = install_fake_grafana(short_tmp_dir("aq-gf-"))
    stack = Stack.create(GRAFANA_ENABLED="true", GRAFANA_BIN=str(grafana))
    try:
        stack.start()
        stack.wait_for('up{job="vllm"} == 1')
        password = (stack.data_dir / "secrets" / "grafana-admin-password").read_text().strip()
        first = stack.logs()
        assert first.count(password) == 1, "printed once on the start that generates it"
        (line,) = [line for line in first.splitlines() if password in line]
        assert line.startswith("aqua-metrics: Grafana admin password (generated, stored in ")
        assert line.endswith(f"): {password}")
        evidence = Evidence()
        with urllib.request.urlopen(f"{stack.proxy_url}/metrics", timeout=10) as response:
            evidence.add("proxy /metrics", response.read())
        _prometheus_evidence(stack, evidence, None)
        _cmdlines(stack, evidence)
        for command in ("health", "check"):
            evidence.command(command, [sys.executable, "-m", "app", command], stack.env)
        assert stack.stop() == 0

        again = Stack(
            env=stack.env, data_dir=stack.data_dir, log_path=stack.log_path, ports=stack.ports
        )
        again.start()
        try:
            evidence.add("second start", again.logs())
            _cmdlines(again, evidence)
        finally:
            assert again.stop() == 0
        evidence.add("second start, stopped", again.logs())
        secrets_ = SecretSet()
        secrets_.add_password("generated grafana password", password, user="admin")
        _assert_clean(secrets_, evidence)
    finally:
        stack.cleanup()


@pytest.mark.parametrize("mode", ["api_key", "session"])
def test_check_never_prints_key_material_for_a_broken_key(tmp_path, mode):
    """A key file that is not a key (e.g. the token pasted into it) is reported by path only."""
    registry = KeyRegistry()
    issuer = TokenIssuer()
    issuer.register_with(registry)
    if mode == "api_key":
        creds = make_api_key_profile(tmp_path)
        env_extra = {"OCI_CONFIG_FILE": str(creds.config_path)}
        key_path = creds.key.private_path
    else:
        session = make_security_token_profile(tmp_path, issuer)
        env_extra = {
            "OCI_CONFIG_FILE": str(session.config_path),
            "OCI_CONFIG_PROFILE": session.profile,
        }
        key_path = session.key.private_path
    secrets_ = SecretSet()
    material = key_path.read_text()
    # Damage the key: drop its first base64 line, keep the rest (which must not be echoed).
    lines = material.splitlines()
    key_path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    secrets_.add("damaged key", *[line for line in lines[2:-1] if len(line) >= 12])
    env = base_environment(
        {"TARGETS": "md=https://modeldeployment.example.com/x/predict/metrics", **env_extra}
    )
    evidence = Evidence()
    result = evidence.command("check", [sys.executable, "-m", "app", "check"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    _assert_clean(secrets_, evidence)
