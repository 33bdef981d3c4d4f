"""Offline OCI test credentials: key pairs, a token issuer, config files and principal environments.

Everything is written under a caller-supplied directory (a pytest tmp dir) in the layouts the oci
SDK and CLI use, so the app's real credential loading runs against it:

* API key profile: `user`, `fingerprint` (MD5 of the public key's DER, colon hex), `tenancy`,
  `region`, `key_file` [, `pass_phrase`].
* Session-token profile as `oci session authenticate` writes it: `fingerprint`, `key_file`,
  `tenancy`, `region`, `security_token_file` under `sessions/<profile>/`.
* Resource principal v2.2 environment: `OCI_RESOURCE_PRINCIPAL_VERSION=2.2`, `..._RPST`,
  `..._PRIVATE_PEM`, `..._PRIVATE_PEM_PASSPHRASE`, `..._REGION`. The SDK treats RPST/PEM/passphrase
  values that are absolute paths as files to (re)read, anything else as the literal value.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from testkit import jws
from testkit.cavage import KeyRegistry

DEFAULT_REGION = "us-ashburn-1"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def fake_ocid(resource_type: str, region: str = "") -> str:
    """A syntactically plausible, unique OCID (`ocid1.<type>.oc1.<region>.<60 chars>`)."""
    unique = "".join(secrets.choice(_B32) for _ in range(60))
    return f"ocid1.{resource_type}.oc1.{region}.{unique}"


def api_key_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """OCI's API key fingerprint: MD5 of the DER SubjectPublicKeyInfo, lower-case colon hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _write_private(path: Path, data: bytes | str) -> Path:
    """Write `data` atomically with mode 0600 (a reader never sees a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class KeyPair:
    """An RSA key pair on disk (PKCS#8 private PEM, optionally encrypted, and public PEM)."""

    private_key: rsa.RSAPrivateKey
    private_path: Path
    public_path: Path
    passphrase: str | None = None

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return api_key_fingerprint(self.public_key)

    def private_pem(self) -> str:
        """The private key PEM exactly as written to `private_path`."""
        return self.private_path.read_text()


def generate_key_pair(
    directory: Path, name: str = "oci_api_key", *, passphrase: str | None = None
) -> KeyPair:
    """Create a 2048-bit key pair as `<name>.pem` / `<name>_public.pem` in `directory`."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path = _write_private(Path(directory) / f"{name}.pem", private_pem)
    public_path = _write_private(Path(directory) / f"{name}_public.pem", public_pem)
    return KeyPair(private_key, private_path, public_path, passphrase)


class TokenIssuer:
    """Mints RS256 JWTs shaped like OCI security tokens (a stand-in for OCI's auth service).

    The session public key goes into the `jwk` claim as a JSON *string* with standard-base64
    `n`/`e`, which is how real OCI tokens carry it. Register the issuer with a `KeyRegistry` so the
    verifier trusts its tokens.
    """

    def __init__(
        self, kid: str = "test_oc1_aqua", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.kid = kid
        self._clock = clock
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.minted = 0

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def register_with(self, registry: KeyRegistry) -> None:
        registry.add_token_issuer(self.kid, self.public_key)

    def mint(
        self,
        session_public_key: rsa.RSAPublicKey,
        *,
        sub: str,
        ttl_seconds: float = 3600,
        claims: Mapping[str, Any] | None = None,
        jwk_kid: str | None = None,
    ) -> str:
        """A token for `sub` binding `session_public_key`, valid from now for `ttl_seconds`.

        A negative ttl gives an already-expired token.
        """
        now = int(self._clock())
        jwk = jws.jwk_from_public_key(session_public_key, kid=jwk_kid)
        body: dict[str, Any] = {
            "sub": sub,
            "iss": "authService.oracle.com",
            "aud": "oci",
            "iat": now,
            "exp": now + int(ttl_seconds),
            "jti": str(uuid.uuid4()),
            "jwk": jws.json_text(jwk),
        }
        body.update(claims or {})
        self.minted += 1
        return jws.encode_rs256(body, self.private_key, kid=self.kid)

    def mint_session_token(
        self,
        session_public_key: rsa.RSAPublicKey,
        *,
        user: str,
        tenancy: str,
        ttl_seconds: float = 3600,
    ) -> str:
        """A user session token (UPST) like `oci session authenticate` obtains."""
        return self.mint(
            session_public_key,
            sub=user,
            ttl_seconds=ttl_seconds,
            claims={"ptype": "user", "ttype": "login", "tenant": tenancy},
        )

    def mint_resource_principal_token(
        self,
        session_public_key: rsa.RSAPublicKey,
        *,
        resource_id: str,
        tenancy: str,
        compartment: str,
        res_type: str,
        ttl_seconds: float = 3600,
    ) -> str:
        """A resource principal session token (RPST); the SDK reads `res_tenant`/`res_compartment`."""
        return self.mint(
            session_public_key,
            sub=resource_id,
            ttl_seconds=ttl_seconds,
            claims={
                "ptype": "resource",
                "ttype": "res",
                "res_type": res_type,
                "res_id": resource_id,
                "res_tenant": tenancy,
                "res_compartment": compartment,
                "tenant": tenancy,
            },
        )

    def mint_instance_token(
        self,
        session_public_key: rsa.RSAPublicKey,
        *,
        instance_id: str,
        tenancy: str,
        compartment: str,
        cert_fingerprint: str,
        ttl_seconds: float = 1200,
    ) -> str:
        """An instance principal token as the federation endpoint (`/v1/x509`) returns it."""
        return self.mint(
            session_public_key,
            sub=instance_id,
            ttl_seconds=ttl_seconds,
            jwk_kid=cert_fingerprint,
            claims={
                "ptype": "instance",
                "ttype": "x509",
                "opc-certtype": "instance",
                "opc-instance": instance_id,
                "opc-compartment": compartment,
                "opc-tenant": tenancy,
                "tenant": tenancy,
                "fprint": cert_fingerprint,
            },
        )


def write_config_profile(config_path: Path, profile: str, values: Mapping[str, str]) -> Path:
    """Add or replace `[profile]` in an OCI config file, keeping other profiles."""
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    if config_path.exists():
        parser.read(config_path)
    parser[profile] = dict(values)
    lines = []
    for section in parser.sections():
        lines.append(f"[{section}]")
        lines.extend(f"{k}={v}" for k, v in parser[section].items())
        lines.append("")
    return _write_private(config_path, "\n".join(lines))


@dataclass(frozen=True)
class ApiKeyCredentials:
    """An `api_key` profile written to an OCI config file."""

    config_path: Path
    profile: str
    tenancy: str
    user: str
    region: str
    key: KeyPair

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"

    def register_with(self, registry: KeyRegistry) -> str:
        return registry.add_api_key(self.tenancy, self.user, self.fingerprint, self.key.public_key)


def make_api_key_profile(
    directory: Path,
    *,
    profile: str = "DEFAULT",
    config_path: Path | None = None,
    tenancy: str | None = None,
    user: str | None = None,
    region: str = DEFAULT_REGION,
    passphrase: str | None = None,
) -> ApiKeyCredentials:
    """Generate an API key under `directory/keys/<profile>` and write its profile."""
    directory = Path(directory)
    config_path = config_path or directory / "config"
    key = generate_key_pair(directory / "keys" / profile, passphrase=passphrase)
    tenancy = tenancy or fake_ocid("tenancy")
    user = user or fake_ocid("user")
    values = {
        "user": user,
        "fingerprint": key.fingerprint,
        "tenancy": tenancy,
        "region": region,
        "key_file": str(key.private_path),
    }
    if passphrase:
        values["pass_phrase"] = passphrase
    write_config_profile(config_path, profile, values)
    return ApiKeyCredentials(config_path, profile, tenancy, user, region, key)


@dataclass
class SessionTokenCredentials:
    """A `security_token` profile plus the means to refresh its token file on disk."""

    config_path: Path
    profile: str
    tenancy: str
    user: str
    region: str
    key: KeyPair
    token_path: Path
    issuer: TokenIssuer

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    def rotate(self, *, ttl_seconds: float = 3600, new_key: bool = False) -> str:
        """Write a fresh token (as `oci session refresh` does); `new_key` also replaces the key
        file, as a new `oci session authenticate` would. Returns the new token."""
        if new_key:
            self.key = generate_key_pair(self.key.private_path.parent)
        token = self.issuer.mint_session_token(
            self.key.public_key, user=self.user, tenancy=self.tenancy, ttl_seconds=ttl_seconds
        )
        _write_private(self.token_path, token)
        return token


def make_security_token_profile(
    directory: Path,
    issuer: TokenIssuer,
    *,
    profile: str = "SESSION",
    config_path: Path | None = None,
    tenancy: str | None = None,
    user: str | None = None,
    region: str = DEFAULT_REGION,
    ttl_seconds: float = 3600,
) -> SessionTokenCredentials:
    """Write `sessions/<profile>/{oci_api_key.pem,token}` and a profile pointing at them."""
    directory = Path(directory)
    config_path = config_path or directory / "config"
    session_dir = directory / "sessions" / profile
    key = generate_key_pair(session_dir)
    creds = SessionTokenCredentials(
        config_path,
        profile,
        tenancy or fake_ocid("tenancy"),
        user or fake_ocid("user"),
        region,
        key,
        session_dir / "token",
        issuer,
    )
    creds.rotate(ttl_seconds=ttl_seconds)
    write_config_profile(
        config_path,
        profile,
        {
            "fingerprint": key.fingerprint,
            "key_file": str(key.private_path),
            "tenancy": creds.tenancy,
            "region": region,
            "security_token_file": str(creds.token_path),
        },
    )
    return creds


@dataclass
class ResourcePrincipalCredentials:
    """A resource principal v2.2 environment (`env`) and the identity it stands for."""

    env: dict[str, str]
    mode: Literal["literal", "file"]
    key: KeyPair
    issuer: TokenIssuer
    tenancy: str
    compartment: str
    resource_id: str
    res_type: str
    region: str
    token_path: Path | None = None
    tokens: list[str] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.tokens[-1]

    def rotate(self, *, ttl_seconds: float = 3600) -> str:
        """Write a fresh RPST to the token file (file mode only: a literal env var can't change
        under a running process)."""
        if self.token_path is None:
            raise RuntimeError("literal-mode RPST cannot be rotated; use mode='file'")
        token = self._mint(ttl_seconds)
        _write_private(self.token_path, token)
        return token

    def _mint(self, ttl_seconds: float) -> str:
        token = self.issuer.mint_resource_principal_token(
            self.key.public_key,
            resource_id=self.resource_id,
            tenancy=self.tenancy,
            compartment=self.compartment,
            res_type=self.res_type,
            ttl_seconds=ttl_seconds,
        )
        self.tokens.append(token)
        return token


def make_resource_principal_v22(
    directory: Path,
    issuer: TokenIssuer,
    *,
    mode: Literal["literal", "file"] = "literal",
    passphrase: str | None = None,
    region: str = DEFAULT_REGION,
    tenancy: str | None = None,
    compartment: str | None = None,
    resource_id: str | None = None,
    res_type: str = "datasciencenotebooksession",
    ttl_seconds: float = 3600,
) -> ResourcePrincipalCredentials:
    """Environment for `oci.auth.signers.get_resource_principals_signer()` (RP v2.2), offline.

    `mode="literal"` puts the RPST, PEM and passphrase in the variables themselves;
    `mode="file"` puts absolute paths there (the SDK re-reads them on refresh). Note: with
    oci 2.189.0 a passphrase *file* crashes the SDK (`open(path, "b")`), so file mode with a
    passphrase reproduces an SDK bug rather than a working setup.
    """
    directory = Path(directory)
    key = generate_key_pair(directory / "rp", "rp_session_key", passphrase=passphrase)
    tenancy = tenancy or fake_ocid("tenancy")
    creds = ResourcePrincipalCredentials(
        env={},
        mode=mode,
        key=key,
        issuer=issuer,
        tenancy=tenancy,
        compartment=compartment or fake_ocid("compartment"),
        resource_id=resource_id or fake_ocid(res_type, "iad"),
        res_type=res_type,
        region=region,
    )
    env = {"OCI_RESOURCE_PRINCIPAL_VERSION": "2.2", "OCI_RESOURCE_PRINCIPAL_REGION": region}
    if mode == "file":
        creds.token_path = directory / "rp" / "rpst"
        creds.rotate(ttl_seconds=ttl_seconds)
        env["OCI_RESOURCE_PRINCIPAL_RPST"] = str(creds.token_path.resolve())
        env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"] = str(key.private_path.resolve())
        if passphrase:
            pass_path = _write_private(directory / "rp" / "passphrase", passphrase)
            env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE"] = str(pass_path.resolve())
    else:
        env["OCI_RESOURCE_PRINCIPAL_RPST"] = creds._mint(ttl_seconds)
        env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"] = key.private_pem()
        if passphrase:
            env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE"] = passphrase
    creds.env = env
    return creds
