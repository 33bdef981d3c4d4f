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
from app.oci_config import ApiKeyProfile, AuthMode, ResolvedAuth, SessionTokenProfile

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

    @property
    def sdk_signer(self) -> Any:
        """The SDK signer in use now, for SDK clients (discovery, OCI Monitoring). A refresh may
        replace it (session tokens), so ask again rather than keep it."""
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

    @property
    def sdk_signer(self) -> Any:
        """The SDK signer in use now, for SDK clients (a refresh may replace it)."""
        return self._signer

    def sign(self, request: WireRequest) -> str:
        signed = self._signer.do_request_sign(request, enforce_content_headers=False)
        return str(signed.headers["authorization"])


class SdkSignerCredentials(_SdkSigning):
    """Any SDK signer; token-based ones (principals) refresh through the SDK's own API."""

    def __init__(self, mode: AuthMode, signer: Any) -> None:
        self.mode = mode
        self._signer = signer
        self._lock = threading.Lock()

    def refresh(self, *, force: bool) -> bool:
        if not self.mode.renews_tokens:
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
        try:
            token = self._token_file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise CredentialsError(
                f"{self._setting}: security_token_file {self._token_file} is not UTF-8 text"
            ) from None
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


def _from_profile(auth: ResolvedAuth) -> Credentials:
    """api_key or security_token credentials from the profile values resolved in app.oci_config."""
    key = auth.profile_key
    if isinstance(key, ApiKeyProfile):
        from oci.signer import Signer

        signer = _with_key_errors(
            key.key_file,
            key.setting,
            lambda: Signer(
                tenancy=key.tenancy,
                user=key.user,
                fingerprint=key.fingerprint,
                private_key_file_location=str(key.key_file),
                pass_phrase=key.pass_phrase,
            ),
        )
        return SdkSignerCredentials(AuthMode.API_KEY, signer)
    if isinstance(key, SessionTokenProfile):
        # Loads (and so checks) the key and token, reporting problems against the profile.
        return SessionTokenCredentials(
            key.token_file, key.key_file, key.pass_phrase, setting=key.setting
        )
    raise CredentialsError(
        f"OCI_CONFIG_PROFILE: no usable {auth.mode.value} profile was resolved "
        "(run `aqua-metrics check`)"
    )


def build_credentials(
    auth: ResolvedAuth, *, instance_principal_options: Mapping[str, Any] | None = None
) -> Credentials | None:
    """Build the signer for a resolved auth mode (None for unsigned). Raises CredentialsError.

    `instance_principal_options` are extra SDK constructor arguments (retry strategies), so tests
    can run the real signer against local stand-ins without the SDK's multi-minute retries.
    """
    if auth.mode is AuthMode.NONE:
        return None
    if auth.mode in (AuthMode.API_KEY, AuthMode.SECURITY_TOKEN):
        return _from_profile(auth)
    if auth.mode is AuthMode.RESOURCE_PRINCIPAL:
        from oci.auth.signers import get_resource_principals_signer

        try:
            signer = get_resource_principals_signer()
        except Exception as exc:  # the SDK raises many types; report the kind, never the values
            raise CredentialsError(
                f"OCI_AUTH: resource principal signer could not be built ({type(exc).__name__}); "
                "check the OCI_RESOURCE_PRINCIPAL_* environment of this container"
            ) from None
        return SdkSignerCredentials(AuthMode.RESOURCE_PRINCIPAL, signer)
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
        return SdkSignerCredentials(AuthMode.INSTANCE_PRINCIPAL, signer)
    raise CredentialsError(f"OCI_AUTH: cannot build credentials for mode {auth.mode.value}")


def credentials_problem(auth: ResolvedAuth) -> str | None:
    """Build the credentials once to check them: None when they load, else the one-line problem.

    Instance principal credentials are not built here (they need the instance metadata service).
    """
    if auth.mode is AuthMode.INSTANCE_PRINCIPAL:
        return None
    try:
        build_credentials(auth)
    except CredentialsError as exc:
        return str(exc)
    except Exception as exc:  # the SDK raises many types; report the kind, never the values
        return f"OCI_AUTH: {auth.mode.value} credentials could not be loaded ({type(exc).__name__})"
    return None
