"""OCI credentials built once per process: a signer per auth mode, and how it refreshes.

The SDK's signers are `requests` auth objects; we only use them to compute the Authorization
header for exactly what httpx puts on the wire (see `app.signing`). Building a signer loads a
private key (~40 ms) and, for principals, talks to the network, so it happens once at start-up.
Refreshing may block (file reads, federation calls): callers run `refresh` off the event loop.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from app.errors import ConfigError
from app.oci_config import AuthMode, ResolvedAuth

T = TypeVar("T")


class CredentialsError(ConfigError):
    """Credentials could not be built; the message is one line naming the setting (no secrets)."""


@dataclass
class WireRequest:
    """The minimal request shape the SDK signers read: what goes on the wire, nothing else."""

    method: str
    url: str
    headers: dict[str, str]
    path_url: str
    body: bytes | None = None


class Credentials(Protocol):
    mode: AuthMode

    @property
    def key_id(self) -> str:
        """Identifies the credential in use; changes when a refresh brings a new token."""
        ...

    def sign(self, request: WireRequest) -> str:
        """Return the Authorization header value for `request` (CPU only, never blocks on I/O)."""
        ...

    def refresh(self, *, force: bool) -> bool:
        """Renew the token when due (or now, with force). Blocking. True when key_id changed."""
        ...


def _throwaway_request() -> WireRequest:
    return WireRequest(
        method="GET",
        url="https://refresh.invalid/",
        headers={"date": email.utils.formatdate(usegmt=True)},
        path_url="/",
    )


class _SdkSigning:
    """Signing through the SDK signer in `_signer` (all credential kinds share this)."""

    _signer: Any

    @property
    def key_id(self) -> str:
        return str(getattr(self._signer, "api_key", ""))

    def sign(self, request: WireRequest) -> str:
        signed = self._signer.do_request_sign(request, enforce_content_headers=False)
        return str(signed.headers["authorization"])


class SdkSignerCredentials(_SdkSigning):
    """Any SDK signer; token-based ones (principals) refresh through the SDK's own API."""

    def __init__(self, mode: AuthMode, signer: Any, *, token_based: bool) -> None:
        self.mode = mode
        self._signer = signer
        self._token_based = token_based
        self._lock = threading.Lock()

    def refresh(self, *, force: bool) -> bool:
        if not self._token_based:
            return False
        with self._lock:
            before = self.key_id
            if force and hasattr(self._signer, "refresh_security_token"):
                self._signer.refresh_security_token()
            elif hasattr(self._signer, "get_security_token"):
                self._signer.get_security_token()  # renews only when close to expiry
            # Instance-principal signers adopt a renewed token only when called.
            self._signer(_throwaway_request(), enforce_content_headers=False)
            return self.key_id != before


class SessionTokenCredentials(_SdkSigning):
    """`oci session authenticate` tokens: token AND session key re-read from disk whenever the CLI
    rewrites them (`oci session refresh` rewrites the token; a new `authenticate`, both)."""

    def __init__(
        self, token_file: Path, key_file: Path, passphrase: str | None, *, setting: str
    ) -> None:
        from oci.auth.signers import SecurityTokenSigner

        self.mode = AuthMode.SECURITY_TOKEN
        self._signer_class = SecurityTokenSigner
        self._token_file = token_file
        self._key_file = key_file
        self._passphrase = passphrase
        self._setting = setting  # names the profile in error lines
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._signer: Any = None
        self._material: tuple[str, int] | None = None
        self._load()

    def _load(self) -> bool:
        from oci.signer import load_private_key_from_file

        token_stat, key_stat = self._token_file.stat(), self._key_file.stat()
        stamp = (token_stat.st_mtime_ns, token_stat.st_size, key_stat.st_mtime_ns, key_stat.st_size)
        if stamp == self._stamp:
            return False
        token = self._token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise CredentialsError(
                f"{self._setting}: security_token_file {self._token_file} is empty"
            )
        key = _with_key_errors(
            self._key_file,
            self._setting,
            lambda: load_private_key_from_file(str(self._key_file), self._passphrase),
        )
        material = (token, key.public_key().public_numbers().n)
        changed = material != self._material
        self._signer = self._signer_class(token, key)
        self._stamp, self._material = stamp, material
        return changed

    def refresh(self, *, force: bool) -> bool:
        with self._lock:
            if force:
                self._stamp = None
            return self._load()


def _with_key_errors(path: Path, setting: str, build: Callable[[], T]) -> T:
    """Run a key-loading step, turning the SDK's errors into one line without key material."""
    from oci.exceptions import InvalidPrivateKey

    try:
        return build()
    except (InvalidPrivateKey, ValueError, TypeError):
        raise CredentialsError(
            f"{setting}: key_file {path} is not a usable private key, or its pass_phrase is wrong"
        ) from None
    except OSError as exc:
        raise CredentialsError(f"{setting}: cannot read key_file {path} ({exc.strerror})") from None


def _profile_values(auth: ResolvedAuth) -> dict[str, str]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    assert auth.config_file is not None and auth.profile is not None
    parser.read(auth.config_file, encoding="utf-8")
    return dict(parser[auth.profile])


def build_credentials(
    auth: ResolvedAuth, *, instance_principal_options: Mapping[str, Any] | None = None
) -> Credentials | None:
    """Build the signer for a resolved auth mode (None for unsigned). Raises CredentialsError.

    `instance_principal_options` are extra SDK constructor arguments (retry strategies), so tests
    can run the real signer against local stand-ins without the SDK's multi-minute retries.
    """
    if auth.mode is AuthMode.NONE:
        return None
    setting = f"OCI_CONFIG_PROFILE ([{auth.profile}] in {auth.config_file})"
    if auth.mode is AuthMode.API_KEY:
        from oci.signer import Signer

        values = _profile_values(auth)
        assert auth.key_file is not None
        signer = _with_key_errors(
            auth.key_file,
            setting,
            lambda: Signer(
                tenancy=values["tenancy"],
                user=values["user"],
                fingerprint=values["fingerprint"],
                private_key_file_location=str(auth.key_file),
                pass_phrase=values.get("pass_phrase"),
            ),
        )
        return SdkSignerCredentials(AuthMode.API_KEY, signer, token_based=False)
    if auth.mode is AuthMode.SECURITY_TOKEN:
        values = _profile_values(auth)
        assert auth.key_file is not None and auth.token_file is not None
        # Loads (and so checks) the key and token, reporting problems against the profile.
        return SessionTokenCredentials(
            auth.token_file, auth.key_file, values.get("pass_phrase"), setting=setting
        )
    if auth.mode is AuthMode.RESOURCE_PRINCIPAL:
        from oci.auth.signers import get_resource_principals_signer

        try:
            signer = get_resource_principals_signer()
        except Exception as exc:  # the SDK raises many types; report the kind, never the values
            raise CredentialsError(
                f"OCI_AUTH: resource principal signer could not be built ({type(exc).__name__}); "
                "check the OCI_RESOURCE_PRINCIPAL_* environment of this container"
            ) from None
        return SdkSignerCredentials(AuthMode.RESOURCE_PRINCIPAL, signer, token_based=True)
    if auth.mode is AuthMode.INSTANCE_PRINCIPAL:
        from oci.auth.signers import InstancePrincipalsSecurityTokenSigner

        try:
            options = dict(instance_principal_options or {})
            if auth.federation_endpoint:
                options["federation_endpoint"] = auth.federation_endpoint
            with contextlib.redirect_stdout(None):
                signer = InstancePrincipalsSecurityTokenSigner(**options)
        except Exception as exc:
            raise CredentialsError(
                f"OCI_AUTH: instance principal signer could not be built ({type(exc).__name__}); "
                "this must run on an OCI instance in a dynamic group (metadata service unreachable?)"
            ) from None
        return SdkSignerCredentials(AuthMode.INSTANCE_PRINCIPAL, signer, token_based=True)
    raise CredentialsError(f"OCI_AUTH: cannot build credentials for mode {auth.mode.value}")
