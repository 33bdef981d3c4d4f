"""Local stand-ins for what `oci.auth.signers.InstancePrincipalsSecurityTokenSigner` talks to.

* `InstanceMetadataServer`: the IMDS under `/opc/v2` (requires `Authorization: Bearer Oracle`):
  `instance/region`, `identity/cert.pem`, `identity/key.pem`, `identity/intermediate.pem`.
  Point the SDK at it with the env var `OCI_METADATA_BASE_URL=<metadata_base_url>`, read by the
  signer constructor in oci 2.189.0 (not in 2022-era releases, which only had class constants);
  with it set the SDK never probes 169.254.169.254.
* `FederationServer`: the auth service's `POST /v1/x509`. It checks the request the way the
  service would (signature by the leaf certificate's key, keyId `<tenancy>/fed-x509/<SHA1 fp>`,
  leaf issued by the intermediate) and returns `{"token": jwt}` whose `jwk` is the session public
  key from the body. Pass its `endpoint` as the signer's `federation_endpoint=` kwarg.
* `InstanceIdentity`: a root CA, intermediate and leaf whose subject carries
  `OU=opc-tenant:<tenancy>` (what `auth_utils.get_tenancy_id_from_certificate` parses).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from testkit.background_server import BackgroundHTTPServer, QuietHandler
from testkit.cavage import (
    BODY_HEADERS,
    KeyKind,
    KeyRegistry,
    ResolvedKey,
    SignatureError,
    verify_request,
)
from testkit.closing import ClosesOnExit
from testkit.oci_credentials import DEFAULT_REGION, TokenIssuer, fake_ocid

METADATA_AUTH = "Bearer Oracle"
FEDERATION_SIGNED_HEADERS = ("date", "(request-target)", *BODY_HEADERS)


def _name(common_name: str, *units: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units]
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    signing_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    days: int,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_sha1_fingerprint(cert: x509.Certificate) -> str:
    """Upper-case colon hex SHA-1, exactly as `X509FederationClient` builds the keyId."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA1()))


@dataclass
class InstanceIdentity:
    """The certificate chain an OCI instance gets from IMDS; `rotate_leaf` mimics renewal."""

    tenancy: str
    compartment: str
    instance_id: str
    root_key: rsa.RSAPrivateKey
    root_cert: x509.Certificate
    intermediate_key: rsa.RSAPrivateKey
    intermediate_cert: x509.Certificate
    leaf_key: rsa.RSAPrivateKey = field(init=False)
    leaf_cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.rotate_leaf()

    @classmethod
    def create(cls, *, tenancy: str | None = None) -> InstanceIdentity:
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_name = _name("Test OCI Root CA")
        root = _issue(root_name, root_key.public_key(), root_name, root_key, ca=True, days=3650)
        mid_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        mid = _issue(
            _name("PKISVC Identity Intermediate r2"),
            mid_key.public_key(),
            root_name,
            root_key,
            ca=True,
            days=365,
        )
        return cls(
            tenancy or fake_ocid("tenancy"),
            fake_ocid("compartment"),
            fake_ocid("instance", "iad"),
            root_key,
            root,
            mid_key,
            mid,
        )

    def rotate_leaf(self, *, tenancy: str | None = None) -> None:
        """Issue a new leaf key and certificate (optionally for another tenancy)."""
        tenancy = tenancy or self.tenancy
        self.leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # Real leaf certificates use the instance OCID as CN; X.509 caps CN at 64 characters and
        # the SDK reads only the OU values, so the CN is shortened here.
        subject = _name(
            self.instance_id[-64:],
            "opc-certtype:instance",
            f"opc-compartment:{self.compartment}",
            f"opc-instance:{self.instance_id}",
            f"opc-tenant:{tenancy}",
        )
        self.leaf_cert = _issue(
            subject,
            self.leaf_key.public_key(),
            self.intermediate_cert.subject,
            self.intermediate_key,
            ca=False,
            days=1,
        )

    @property
    def leaf_cert_pem(self) -> bytes:
        return _pem(self.leaf_cert)

    @property
    def leaf_key_pem(self) -> bytes:
        return self.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    @property
    def intermediate_pem(self) -> bytes:
        return _pem(self.intermediate_cert)

    @property
    def leaf_fingerprint(self) -> str:
        return cert_sha1_fingerprint(self.leaf_cert)


class _MetadataHandler(QuietHandler):
    owner: InstanceMetadataServer

    def do_GET(self) -> None:
        imds = self.owner
        imds._record(self.path, dict(self.headers.items()))
        if self.headers.get("Authorization") != METADATA_AUTH:
            self.send_bytes(401, b"Unauthorized")
            return
        if imds.fail_with is not None:
            self.send_bytes(imds.fail_with, b"injected failure")
            return
        ident = imds.identity
        region_info = {
            "realmKey": "oc1",
            "realmDomainComponent": "oraclecloud.com",
            "regionKey": imds.region_key.upper(),
            "regionIdentifier": imds.region,
        }
        routes: dict[str, tuple[bytes, str]] = {
            "/opc/v2/instance/region": (imds.region_key.encode(), "text/plain"),
            "/opc/v2/instance/regionInfo": (json.dumps(region_info).encode(), "application/json"),
            "/opc/v2/identity/cert.pem": (ident.leaf_cert_pem, "text/plain"),
            "/opc/v2/identity/key.pem": (ident.leaf_key_pem, "text/plain"),
            "/opc/v2/identity/intermediate.pem": (ident.intermediate_pem, "text/plain"),
        }
        if self.path not in routes:
            self.send_bytes(404, b"Not Found")
            return
        body, content_type = routes[self.path]
        self.send_bytes(200, body, {"Content-Type": content_type})


class InstanceMetadataServer(BackgroundHTTPServer):
    """IMDS v2 stand-in. `env` holds the `OCI_METADATA_BASE_URL` override for the SDK."""

    def __init__(
        self, identity: InstanceIdentity, *, region: str = DEFAULT_REGION, region_key: str = "iad"
    ) -> None:
        self.identity = identity
        self.region = region
        self.region_key = region_key
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__(_MetadataHandler)

    @property
    def metadata_base_url(self) -> str:
        return f"{self.base_url}/opc/v2"

    @property
    def env(self) -> dict[str, str]:
        return {"OCI_METADATA_BASE_URL": self.metadata_base_url}

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def _record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, headers))


@dataclass(frozen=True)
class FederationCall:
    """One `/v1/x509` request: the session key it asked to bind and the token returned."""

    key_id: str | None
    session_public_key: rsa.RSAPublicKey | None
    token: str | None
    error: str | None


class _FederationHandler(QuietHandler):
    owner: FederationServer

    def do_POST(self) -> None:
        fed = self.owner
        body = self.read_body()
        try:
            if self.path != "/v1/x509":
                raise SignatureError("unknown path")
            if fed.fail_with is not None:
                raise SignatureError(f"injected {fed.fail_with}")
            key_id, session_key = fed._check(self.path, self.headers.items(), body)
        except (SignatureError, InvalidSignature, ValueError, KeyError, TypeError) as exc:
            reason = exc.reason if isinstance(exc, SignatureError) else repr(exc)
            fed._record(FederationCall(None, None, None, reason))
            status = fed.fail_with or 401
            payload = {"code": "NotAuthenticated", "message": reason}
            self.send_bytes(
                status, json.dumps(payload).encode(), {"Content-Type": "application/json"}
            )
            return
        ident = fed.identity
        token = fed.issuer.mint_instance_token(
            session_key,
            instance_id=ident.instance_id,
            tenancy=ident.tenancy,
            compartment=ident.compartment,
            cert_fingerprint=ident.leaf_fingerprint,
            ttl_seconds=fed.token_ttl_seconds,
        )
        fed._record(FederationCall(key_id, session_key, token, None))
        self.send_bytes(
            200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"}
        )


class FederationServer(BackgroundHTTPServer):
    """Auth-service `/v1/x509` stand-in. `calls` counts tokens issued (refreshes show up here).

    `token_ttl_seconds` below 60 makes every signer call refresh (the SDK refreshes when within
    60 s of `exp`); `fail_with` makes it answer that status instead.
    """

    def __init__(
        self, identity: InstanceIdentity, issuer: TokenIssuer, *, token_ttl_seconds: float = 1200
    ) -> None:
        self.identity = identity
        self.issuer = issuer
        self.token_ttl_seconds = token_ttl_seconds
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self.history: list[FederationCall] = []
        super().__init__(_FederationHandler)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v1/x509"

    @property
    def calls(self) -> int:
        """Number of tokens successfully issued."""
        with self._lock:
            return sum(1 for call in self.history if call.token)

    @property
    def tokens(self) -> list[str]:
        with self._lock:
            return [call.token for call in self.history if call.token]

    def _record(self, call: FederationCall) -> None:
        with self._lock:
            self.history.append(call)

    def _check(self, target: str, headers: Any, body: bytes) -> tuple[str, rsa.RSAPublicKey]:
        """Verify the federation request; return (keyId, session public key to bind)."""
        payload = json.loads(body)
        leaf = x509.load_der_x509_certificate(base64.b64decode(payload["certificate"]))
        leaf.verify_directly_issued_by(self.identity.intermediate_cert)
        intermediates = [base64.b64decode(c) for c in payload.get("intermediateCertificates", [])]
        if self.identity.intermediate_cert.public_bytes(serialization.Encoding.DER) not in (
            intermediates
        ):
            raise SignatureError("intermediate certificate missing")
        session_key = serialization.load_der_public_key(base64.b64decode(payload["publicKey"]))
        if not isinstance(session_key, rsa.RSAPublicKey):
            raise SignatureError("session key is not RSA")
        expected_key_id = f"{self.identity.tenancy}/fed-x509/{cert_sha1_fingerprint(leaf)}"
        leaf_key = leaf.public_key()
        assert isinstance(leaf_key, rsa.RSAPublicKey)

        def resolve(key_id: str) -> ResolvedKey:
            if key_id != expected_key_id:
                raise SignatureError("keyId does not match tenancy/leaf certificate")
            return ResolvedKey(KeyKind.OTHER, leaf_key, principal=self.identity.instance_id)

        verified = verify_request(
            "POST",
            target,
            headers,
            resolve,
            body=body,
            required_headers=FEDERATION_SIGNED_HEADERS,
        )
        return verified.key_id, session_key


class InstancePrincipalStandIn(ClosesOnExit):
    """IMDS + federation endpoint + issuer for one fake instance; a context manager.

    Usage: `monkeypatch.setenv(**stand_in.env)` (or set `OCI_METADATA_BASE_URL`), then
    `InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())`.
    """

    def __init__(
        self,
        issuer: TokenIssuer | None = None,
        *,
        identity: InstanceIdentity | None = None,
        token_ttl_seconds: float = 1200,
        region: str = DEFAULT_REGION,
        region_key: str = "iad",
    ) -> None:
        self.issuer = issuer or TokenIssuer()
        self.identity = identity or InstanceIdentity.create()
        self.metadata = InstanceMetadataServer(self.identity, region=region, region_key=region_key)
        self.federation = FederationServer(
            self.identity, self.issuer, token_ttl_seconds=token_ttl_seconds
        )

    @property
    def env(self) -> dict[str, str]:
        return self.metadata.env

    def register_with(self, registry: KeyRegistry) -> None:
        self.issuer.register_with(registry)

    def signer_kwargs(self, *, no_retries: bool = True) -> dict[str, Any]:
        """Constructor kwargs for the SDK signer. `no_retries` disables the IMDS retry strategy
        (8 attempts / 180 s), the federation retry strategy and the process-global federation
        circuit breaker, so fault tests fail fast and cannot trip later tests."""
        kwargs: dict[str, Any] = {"federation_endpoint": self.federation.endpoint}
        if no_retries:
            import oci

            kwargs.update(
                retry_strategy=oci.retry.NoneRetryStrategy(),
                federation_client_retry_strategy=oci.retry.NoneRetryStrategy(),
                federation_client_circuit_breaker_strategy=(
                    oci.circuit_breaker.NoCircuitBreakerStrategy()
                ),
            )
        return kwargs

    def close(self) -> None:
        self.metadata.close()
        self.federation.close()
