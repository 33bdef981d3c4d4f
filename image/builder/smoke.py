"""Builder smoke step: after slim.py cut the environment, prove every auth mode still works.

For each mode the proxy supports (api_key with and without a passphrase, security_token, resource
principal v2.2, instance principal) this builds the credentials exactly as `aqua-metrics proxy` does
(load_settings -> build_credentials -> create_app), scrapes a deployment stand-in on loopback through
the proxy app, and checks the request's signature against the public key the stand-in knows. The
instance principal's metadata service and federation endpoint are small local servers too. It also
imports every module the stack runs (supervisor, uvicorn, yaml, bcrypt, the health check) and renders
the runtime files, and runs one paginated fleet discovery listing (the kept `oci.data_science` and
`oci.pagination`) against a signature-checking Data Science stand-in on loopback. Keys and tokens
are generated here and thrown away with the stage.

It also makes a signed SummarizeMetricsData call through the trimmed SDK's MonitoringClient, as the
OCI Monitoring collector does, against a loopback stand-in that checks the signature and body hash.

Any failure prints `smoke: FAIL <what>: <error>` and exits 1, so the image build stops: a module
cut by mistake never reaches an image. Runs with no network but loopback.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import importlib
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TENANCY = "ocid1.tenancy.oc1..smoke"
USER = "ocid1.user.oc1..smoke"
RUNTIME_MODULES = (
    "app.entry",
    "app.cli",
    "app.header_deadline",
    "app.server",
    "app.stack.start",
    "app.stack.health",
    "app.stack.fatal_listener",
    "app.stack.components",
    "app.stack.runtime",
    "app.discovery.service",
    "oci.data_science",
    "oci.pagination",
    # Alert notifications to OCI Notifications (slim.py keeps oci/ons for them).
    "app.alerts.route",
    "app.alerts.test_alert",
    "oci.ons",
    "oci.ons.models",
    "supervisor.supervisord",
    "supervisor.supervisorctl",
    "supervisor.rpcinterface",
    "uvicorn",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.lifespan.on",
    "yaml",
    "bcrypt",
    "prometheus_client",
)


# --- keys and tokens ---------------------------------------------------------------------------


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, passphrase: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
    )


def fingerprint(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(signing_key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    now = int(time.time())
    body = {"iss": "authService.oracle.com", "iat": now, "exp": now + 3600, **claims}
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "smoke"}).encode())
    payload = b64url(json.dumps(body).encode())
    signature = signing_key.sign(f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{payload}.{b64url(signature)}"


# --- a deployment stand-in that checks signatures ------------------------------------------------


class Keys:
    """keyId -> public key, as the gateway would resolve them."""

    def __init__(self) -> None:
        self.by_key_id: dict[str, rsa.RSAPublicKey] = {}
        self.lock = threading.Lock()

    def add(self, key_id: str, public_key: rsa.RSAPublicKey) -> None:
        with self.lock:
            self.by_key_id[key_id] = public_key


def parse_signature(header: str) -> dict[str, str]:
    assert header.startswith("Signature "), "not a Signature header"
    params = {}
    for part in header[len("Signature ") :].split('",'):
        name, _, value = part.partition("=")
        params[name.strip()] = value.strip().strip('"')
    return params


def verify(keys: Keys, method: str, path: str, headers: dict[str, str]) -> str:
    params = parse_signature(headers["authorization"])
    assert params["algorithm"] == "rsa-sha256" and params["version"] == "1", params
    lines = []
    for name in params["headers"].split():
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        else:
            lines.append(f"{name}: {headers[name]}")
    with keys.lock:
        public_key = keys.by_key_id.get(params["keyId"])
    assert public_key is not None, f"unknown keyId {params['keyId'][:40]}..."
    public_key.verify(
        base64.b64decode(params["signature"]),
        "\n".join(lines).encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return params["keyId"]


Answer = tuple[int, bytes, str] | tuple[int, bytes, str, dict[str, str]]


class Server:
    """A threaded HTTP server on 127.0.0.1 whose handler is a plain function answering
    (status, body, content type[, extra headers])."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], Answer]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                return

            def _answer(self) -> None:
                extra: dict[str, str] = {}
                try:
                    status, body, content_type, *more = handle(self)
                    extra = more[0] if more else {}
                except (AssertionError, InvalidSignature, KeyError, ValueError) as exc:
                    status, body, content_type = 404, repr(exc).encode(), "text/plain"
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


METRICS = b'# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 1\n'


def deployment(keys: Keys, verified: list[str]) -> Server:
    def handle(request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified.append(verify(keys, request.command, request.path, headers))
        assert request.path.endswith("/predict/metrics"), request.path
        return 200, METRICS, "text/plain; version=0.0.4; charset=utf-8"

    return Server(handle)


# --- instance principal: metadata service and federation endpoint ---------------------------------


def _name(common_name: str, *units: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units]
    return x509.Name(attributes)


def _certificate(
    subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def instance_identity(keys: Keys, issuer_key: rsa.RSAPrivateKey) -> tuple[Server, Server]:
    """IMDS (/opc/v2/...) and federation (/v1/x509) stand-ins; tokens bind the session key."""
    ca_key, leaf_key = new_key(), new_key()
    ca_name = _name("smoke intermediate")
    ca_pem = _certificate(ca_name, ca_key, ca_name, ca_key)
    leaf_subject = _name("smoke-instance", "opc-certtype:instance", f"opc-tenant:{TENANCY}")
    leaf_pem = _certificate(leaf_subject, leaf_key, ca_name, ca_key)
    routes = {
        "/opc/v2/instance/region": b"iad",
        "/opc/v2/instance/regionInfo": json.dumps(
            {
                "realmKey": "oc1",
                "realmDomainComponent": "oraclecloud.com",
                "regionKey": "IAD",
                "regionIdentifier": "us-ashburn-1",
            }
        ).encode(),
        "/opc/v2/identity/cert.pem": leaf_pem,
        "/opc/v2/identity/key.pem": pem(leaf_key),
        "/opc/v2/identity/intermediate.pem": ca_pem,
    }

    def metadata(request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        assert request.headers.get("Authorization") == "Bearer Oracle", "no IMDS v2 header"
        return 200, routes[request.path], "text/plain"

    def federation(request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length))
        session_key = serialization.load_der_public_key(base64.b64decode(body["publicKey"]))
        assert isinstance(session_key, rsa.RSAPublicKey)
        token = mint_token(issuer_key, {"sub": "smoke-instance", "ptype": "instance"})
        keys.add(f"ST${token}", session_key)
        return 200, json.dumps({"token": token}).encode(), "application/json"

    return Server(metadata), Server(federation)


# --- the checks ------------------------------------------------------------------------------------


def scrape_through_proxy(env: dict[str, str], options: dict[str, Any] | None = None) -> int:
    import httpx

    from app.credentials import build_credentials
    from app.server import create_app
    from app.settings import load_settings

    settings = load_settings(env)
    credentials = build_credentials(settings.proxy.auth, instance_principal_options=options)
    app = create_app(settings, credentials)

    async def go() -> int:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
                response = await client.get("/targets/md/metrics")
                assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
                assert b"vllm:num_requests_running" in response.content
                return response.status_code

    return asyncio.run(go())


def check_modes(work: Path) -> list[str]:
    keys = Keys()
    verified: list[str] = []
    issuer_key = new_key()
    upstream = deployment(keys, verified)
    passed = []
    target = {"TARGETS": f"md={upstream.url}/ocid1.datasciencemodeldeployment.oc1.iad.smoke"}

    def mode(name: str, run: Callable[[], None]) -> None:
        before = len(verified)
        try:
            run()
            assert len(verified) > before, "the deployment saw no verified request"
        except Exception as exc:
            traceback.print_exc()
            print(f"smoke: FAIL {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"smoke: ok {name} (signature verified)", flush=True)
        passed.append(name)

    # api_key, without and with a passphrase
    for profile, passphrase in (("DEFAULT", None), ("LOCKED", "smoke pass phrase")):
        key = new_key()
        key_file = work / f"{profile}.pem"
        key_file.write_bytes(pem(key, passphrase))
        lines = [
            f"[{profile}]",
            f"user={USER}",
            f"fingerprint={fingerprint(key)}",
            f"tenancy={TENANCY}",
            "region=us-ashburn-1",
            f"key_file={key_file}",
        ]
        if passphrase:
            lines.append(f"pass_phrase={passphrase}")
        config = work / f"config-{profile}"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        keys.add(f"{TENANCY}/{USER}/{fingerprint(key)}", key.public_key())
        env = {**target, "OCI_CONFIG_FILE": str(config), "OCI_CONFIG_PROFILE": profile}
        label = "api_key" + (" with pass_phrase" if passphrase else "")
        mode(label, lambda env=env: scrape_through_proxy(env) and None)

    # security_token (oci session authenticate)
    session_key = new_key()
    token = mint_token(issuer_key, {"sub": USER, "ptype": "user", "tenant": TENANCY})
    (work / "token").write_text(token, encoding="utf-8")
    (work / "session.pem").write_bytes(pem(session_key))
    (work / "config-session").write_text(
        "[SESSION]\n"
        f"fingerprint={fingerprint(session_key)}\nkey_file={work / 'session.pem'}\n"
        f"tenancy={TENANCY}\nregion=us-ashburn-1\nsecurity_token_file={work / 'token'}\n",
        encoding="utf-8",
    )
    keys.add(f"ST${token}", session_key.public_key())
    env = {
        **target,
        "OCI_CONFIG_FILE": str(work / "config-session"),
        "OCI_CONFIG_PROFILE": "SESSION",
    }
    mode("security_token", lambda: scrape_through_proxy(env) and None)

    # resource principal v2.2 (Container Instances): the SDK reads os.environ itself
    rp_key = new_key()
    rpst = mint_token(
        issuer_key,
        {
            "sub": "ocid1.computecontainerinstance.oc1.iad.smoke",
            "ptype": "resource",
            "res_type": "computecontainerinstance",
            "res_tenant": TENANCY,
            "res_compartment": "ocid1.compartment.oc1..smoke",
            "tenant": TENANCY,
        },
    )
    keys.add(f"ST${rpst}", rp_key.public_key())
    rp_env = {
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_RESOURCE_PRINCIPAL_RPST": rpst,
        "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": pem(rp_key).decode(),
        "OCI_RESOURCE_PRINCIPAL_REGION": "us-ashburn-1",
    }

    def resource_principal() -> None:
        os.environ.update(rp_env)
        try:
            scrape_through_proxy({**target, **rp_env, "OCI_AUTH": "resource_principal"})
        finally:
            for name in rp_env:
                os.environ.pop(name, None)

    mode("resource_principal v2.2", resource_principal)

    # instance principal: metadata service + federation endpoint on loopback
    metadata, federation = instance_identity(keys, issuer_key)

    def instance_principal() -> None:
        import oci

        os.environ["OCI_METADATA_BASE_URL"] = f"{metadata.url}/opc/v2"
        options = {
            "retry_strategy": oci.retry.NoneRetryStrategy(),
            "federation_client_retry_strategy": oci.retry.NoneRetryStrategy(),
            "federation_client_circuit_breaker_strategy": (
                oci.circuit_breaker.NoCircuitBreakerStrategy()
            ),
        }
        try:
            scrape_through_proxy(
                {
                    **target,
                    "OCI_AUTH": "instance_principal",
                    "OCI_FEDERATION_ENDPOINT": f"{federation.url}/v1/x509",
                },
                options,
            )
        finally:
            os.environ.pop("OCI_METADATA_BASE_URL", None)

    mode("instance_principal", instance_principal)
    for server in (upstream, metadata, federation):
        server.close()
    return passed


# --- fleet discovery: a paged Data Science listing ----------------------------------------------

SMOKE_DEPLOYMENTS = ("Chat", "Summarizer", "Coder")


def datascience_api(keys: Keys, verified: list[str], compartment: str) -> Server:
    """`GET /20190101/modelDeployments`, one deployment per page (`opc-next-page`), signed only."""

    def summary(index: int) -> dict[str, Any]:
        ocid = f"ocid1.datasciencemodeldeployment.oc1.iad.smoke{index}"
        return {
            "id": ocid,
            "displayName": SMOKE_DEPLOYMENTS[index],
            "compartmentId": compartment,
            "projectId": "ocid1.datascienceproject.oc1.iad.smoke",
            "lifecycleState": "ACTIVE",
            "timeCreated": "2026-01-01T00:00:00.000Z",
            "modelDeploymentUrl": f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{ocid}",
            "freeformTags": {"OCI_AQUA": "active", "aqua_model_name": f"model-{index}"},
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "SINGLE_MODEL",
                "modelConfigurationDetails": {
                    "modelId": "ocid1.datasciencemodel.oc1.iad.smoke",
                    "instanceConfiguration": {"instanceShapeName": "VM.GPU.A10.2"},
                    "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 1},
                },
                "environmentConfigurationDetails": {
                    "environmentConfigurationType": "OCIR_CONTAINER",
                    "image": "dsmc://odsc-vllm-serving:0.9",
                },
            },
        }

    def handle(request: BaseHTTPRequestHandler) -> Answer:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified.append(verify(keys, request.command, request.path, headers))
        path, _, query = request.path.partition("?")
        assert path == "/20190101/modelDeployments", path
        params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        assert params.get("compartmentId") == compartment, params
        index = int(params.get("page", "0"))
        body = json.dumps([summary(index)]).encode()
        if index + 1 < len(SMOKE_DEPLOYMENTS):
            return 200, body, "application/json", {"opc-next-page": str(index + 1)}
        return 200, body, "application/json"

    return Server(handle)


def check_discovery(work: Path) -> None:
    """One listing as `aqua-metrics discover` runs it: settings, credentials, lister, pages."""
    from app.credentials import build_credentials
    from app.discovery.service import discover_once
    from app.discovery.setup import build_lister
    from app.settings import load_settings

    keys = Keys()
    verified: list[str] = []
    compartment = "ocid1.compartment.oc1..smoke"
    api = datascience_api(keys, verified, compartment)
    try:
        key = new_key()
        key_file = work / "discovery.pem"
        key_file.write_bytes(pem(key))
        config = work / "config-discovery"
        config.write_text(
            f"[DEFAULT]\nuser={USER}\nfingerprint={fingerprint(key)}\ntenancy={TENANCY}\n"
            f"region=us-ashburn-1\nkey_file={key_file}\n",
            encoding="utf-8",
        )
        keys.add(f"{TENANCY}/{USER}/{fingerprint(key)}", key.public_key())
        env = {
            "OCI_COMPARTMENT_ID": compartment,
            "OCI_DATA_SCIENCE_ENDPOINT": api.url,
            "OCI_CONFIG_FILE": str(config),
        }
        settings = load_settings(env)
        discovery = settings.proxy.discovery
        assert discovery is not None, "OCI_COMPARTMENT_ID did not turn discovery on"
        lister = build_lister(discovery, build_credentials(settings.proxy.auth))
        fleet = discover_once(lister, scope=discovery.scope)
        names = sorted(target.labels["display_name"] for target in fleet.targets)
        assert names == sorted(SMOKE_DEPLOYMENTS), names
        assert len(verified) == len(SMOKE_DEPLOYMENTS), f"{len(verified)} signed pages"
    except Exception as exc:
        traceback.print_exc()
        print(f"smoke: FAIL discovery listing: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        api.close()
    print(f"smoke: ok discovery listing ({len(verified)} signed pages)", flush=True)


def check_stack_modules(work: Path) -> None:
    """Everything `aqua-metrics start` runs imports, and the runtime files render."""
    for name in RUNTIME_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"smoke: FAIL import {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    from app.settings import load_settings
    from app.stack.layout import DataLayout
    from app.stack.runtime import prepare_directories, write_runtime_files

    settings = load_settings(
        {
            "DATA_DIR": str(work / "data"),
            "PROMETHEUS_EXPOSE": "true",
            "PROMETHEUS_BASIC_AUTH_PASSWORD": "smoke",
            "GRAFANA_ENABLED": "false",
        }
    )
    layout = DataLayout(settings.data_dir)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=True)
    assert layout.prometheus_web_config.is_file() and layout.prometheus_config.is_file()
    assert layout.alertmanager_config.is_file()
    print(f"smoke: ok stack modules and runtime files ({len(RUNTIME_MODULES)} modules)")


def check_oci_monitoring(work: Path) -> None:
    """A signed SummarizeMetricsData call through the trimmed SDK's MonitoringClient, as the OCI
    Monitoring collector makes it (app.monitoring.api), parsed into datapoints."""
    import datetime as dt_module

    import oci

    from app.monitoring.api import MonitoringCalls, Pacer, build_client

    keys = Keys()
    key = new_key()
    key_file = work / "monitoring-key.pem"
    key_file.write_bytes(pem(key))
    key_print = fingerprint(key)
    keys.add(f"{TENANCY}/{USER}/{key_print}", key.public_key())
    verified: list[str] = []
    minute = "2026-01-01T00:00:00.000Z"

    def handle(request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.rfile.read(int(headers.get("content-length", "0")))
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert headers["x-content-sha256"] == digest, "body hash does not match"
        assert "x-content-sha256" in parse_signature(headers["authorization"])["headers"]
        verified.append(verify(keys, request.command, request.path, headers))
        assert request.path.startswith("/20180401/metrics/actions/summarizeMetricsData?"), (
            request.path
        )
        answer = [
            {
                "namespace": "oci_datascience_modeldeploy",
                "compartmentId": "ocid1.compartment.oc1..smoke",
                "name": "GpuUtilization",
                "dimensions": {"resourceId": "ocid1.datasciencemodeldeployment.oc1.iad.smoke"},
                "metadata": {},
                "resolution": "1m",
                "aggregatedDatapoints": [{"timestamp": minute, "value": 42.5}],
            }
        ]
        return 200, json.dumps(answer).encode(), "application/json"

    server = Server(handle)
    try:
        signer = oci.signer.Signer(TENANCY, USER, key_print, str(key_file))
        calls = MonitoringCalls(
            lambda: build_client(signer, "us-ashburn-1", server.url),
            host="127.0.0.1",
            pacer=Pacer(),
            counts=Counter(),
            counts_lock=threading.Lock(),
            attempts=1,
        )
        end = dt_module.datetime.now(dt_module.UTC)
        [series] = calls.summarize(
            "ocid1.compartment.oc1..smoke",
            "GpuUtilization[1m].groupBy(resourceId, instanceId).mean()",
            end - dt_module.timedelta(minutes=10),
            end,
        )
        assert [p.value for p in series.points] == [42.5], series
        assert verified, "the Monitoring stand-in saw no verified request"
    except Exception as exc:
        traceback.print_exc()
        print(f"smoke: FAIL oci monitoring: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        server.close()
    print("smoke: ok OCI Monitoring call (MonitoringClient, signed POST, parsed)")


def main() -> int:
    started = time.monotonic()
    # The environment must not steer the checks (a base image could set OCI_* or TARGET).
    for name in list(os.environ):
        if name.startswith(("OCI_", "TARGET", "GRAFANA_", "PROMETHEUS_", "PROXY_")):
            del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="aqua-smoke-") as tmp:
        work = Path(tmp)
        passed = check_modes(work)
        check_stack_modules(work)
        check_discovery(work)
        check_oci_monitoring(work)
    date = email.utils.formatdate(usegmt=True)
    print(
        f"smoke: PASS {len(passed)} auth modes and the stack modules in "
        f"{time.monotonic() - started:.1f}s ({date})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
