"""Which OCI credentials to use: resolves OCI_AUTH against the environment and the config file.

This only inspects files and variables (cheap, no key parsing, no network), so `check` can report
every problem at once. The config profile is read here, once: its values travel in the result
(`ApiKeyProfile`, `SessionTokenProfile`), and building the signer from them is `app.credentials`'
job.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from app.paths import UnknownHome, expand_home

RESOURCE_PRINCIPAL_ENV = "OCI_RESOURCE_PRINCIPAL_VERSION"
_API_KEY_FIELDS = ("user", "fingerprint", "tenancy", "key_file")


class AuthMode(StrEnum):
    AUTO = "auto"
    RESOURCE_PRINCIPAL = "resource_principal"
    INSTANCE_PRINCIPAL = "instance_principal"
    API_KEY = "api_key"
    SECURITY_TOKEN = "security_token"  # noqa: S105 (a mode name, not a secret)
    NONE = "none"

    @property
    def renews_tokens(self) -> bool:
        """True for modes whose tokens expire and are renewed (in the background, and once after
        a refusal); False for API keys and unsigned requests."""
        return self in _TOKEN_MODES


_TOKEN_MODES = frozenset(
    {AuthMode.RESOURCE_PRINCIPAL, AuthMode.INSTANCE_PRINCIPAL, AuthMode.SECURITY_TOKEN}
)


def profile_setting(profile: str, config_file: Path) -> str:
    """How problem lines name a config profile."""
    return f"OCI_CONFIG_PROFILE ([{profile}] in {config_file})"


@dataclass(frozen=True)
class ProfileKey:
    """What a config profile names for signing: the key file and its pass phrase (never shown)."""

    config_file: Path
    profile: str
    key_file: Path
    pass_phrase: str | None = field(repr=False)

    @property
    def setting(self) -> str:
        """How error lines name this profile."""
        return profile_setting(self.profile, self.config_file)


@dataclass(frozen=True)
class ApiKeyProfile(ProfileKey):
    """An API-key profile: the user, tenancy and key fingerprint that form the key id."""

    user: str
    tenancy: str
    fingerprint: str


@dataclass(frozen=True)
class SessionTokenProfile(ProfileKey):
    """An `oci session authenticate` profile: a session key plus the token file the CLI rewrites."""

    token_file: Path


@dataclass(frozen=True)
class ResolvedAuth:
    """The auth mode in force and where its material lives (paths and ids, never key contents).

    `profile_key` is set exactly when the mode is api_key or security_token and resolution found
    no problem; `federation_endpoint` only for instance_principal.
    """

    mode: AuthMode
    requested: AuthMode
    config_file: Path | None = None
    profile: str | None = None
    profile_key: ApiKeyProfile | SessionTokenProfile | None = None
    federation_endpoint: str | None = None
    profile_region: str | None = None  # the config profile's `region`, when it has one

    def describe(self) -> str:
        text = self.mode.value
        if self.requested is AuthMode.AUTO and self.mode is not AuthMode.AUTO:
            text += " (chosen by OCI_AUTH=auto)"
        if self.profile and self.config_file:
            text += f", profile {self.profile} in {self.config_file}"
        return text


def _read_profile(config_file: Path, profile: str, problems: list[str]) -> dict[str, str] | None:
    if not config_file.is_file():
        problems.append(f"OCI_CONFIG_FILE: no config file at {config_file}")
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with config_file.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        problems.append(f"OCI_CONFIG_FILE: cannot read {config_file} ({exc.strerror})")
        return None
    except UnicodeDecodeError:
        problems.append(f"OCI_CONFIG_FILE: {config_file} is not UTF-8 text")
        return None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        problems.append(
            f"OCI_CONFIG_FILE: {config_file} is not a valid OCI config file ({first_line})"
        )
        return None
    if profile != "DEFAULT" and not parser.has_section(profile):
        problems.append(f"OCI_CONFIG_PROFILE: profile [{profile}] not found in {config_file}")
        return None
    return dict(parser[profile])


def _readable_file(
    value: str, config_file: Path, setting: str, what: str, problems: list[str]
) -> Path | None:
    try:
        path = expand_home(value)
    except UnknownHome as exc:
        problems.append(f"{setting}: {what} {exc}")
        return None
    if not path.is_absolute():
        path = config_file.parent / path
    if not path.is_file():
        problems.append(f"{setting}: {what} {path} does not exist")
        return None
    if not os.access(path, os.R_OK):
        problems.append(f"{setting}: {what} {path} is not readable by this user")
        return None
    return path


def _from_profile(
    requested: AuthMode,
    wanted: AuthMode | None,
    config_file: Path,
    profile: str,
    problems: list[str],
) -> ResolvedAuth:
    """api_key or security_token from a config profile; `wanted` None lets the profile decide."""
    values = _read_profile(config_file, profile, problems)
    if values is None:
        return ResolvedAuth(mode=wanted or requested, requested=requested)
    mode = wanted or (
        AuthMode.SECURITY_TOKEN if values.get("security_token_file") else AuthMode.API_KEY
    )
    setting = profile_setting(profile, config_file)
    required = (
        ("key_file", "security_token_file") if mode is AuthMode.SECURITY_TOKEN else _API_KEY_FIELDS
    )
    resolved = ResolvedAuth(
        mode=mode,
        requested=requested,
        config_file=config_file,
        profile=profile,
        profile_region=values.get("region", "").strip() or None,
    )
    missing = [name for name in required if not values.get(name)]
    if missing:
        problems.append(f"{setting}: missing {', '.join(missing)} for {mode.value}")
        return resolved
    key_file = _readable_file(values["key_file"], config_file, setting, "key_file", problems)
    pass_phrase = values.get("pass_phrase") or None
    if mode is AuthMode.SECURITY_TOKEN:
        token_file = _readable_file(
            values["security_token_file"], config_file, setting, "security_token_file", problems
        )
        if key_file is None or token_file is None:
            return resolved
        key: ApiKeyProfile | SessionTokenProfile = SessionTokenProfile(
            config_file, profile, key_file, pass_phrase, token_file=token_file
        )
    else:
        if key_file is None:
            return resolved
        key = ApiKeyProfile(
            config_file,
            profile,
            key_file,
            pass_phrase,
            user=values["user"],
            tenancy=values["tenancy"],
            fingerprint=values["fingerprint"],
        )
    return replace(resolved, profile_key=key)


def resolve_auth(
    requested: AuthMode,
    *,
    has_targets: bool,
    config_file: str,
    profile: str,
    environ: Mapping[str, str],
    problems: list[str],
    all_loopback: bool = False,
) -> ResolvedAuth:
    """Decide the auth mode; append one line per problem to `problems`."""
    if requested is AuthMode.NONE or (requested is AuthMode.AUTO and not has_targets):
        return ResolvedAuth(mode=AuthMode.NONE, requested=requested)
    if requested is AuthMode.RESOURCE_PRINCIPAL or (
        requested is AuthMode.AUTO and environ.get(RESOURCE_PRINCIPAL_ENV)
    ):
        if not environ.get(RESOURCE_PRINCIPAL_ENV):
            problems.append(
                f"OCI_AUTH: resource_principal needs the {RESOURCE_PRINCIPAL_ENV} environment that "
                "OCI Container Instances and Data Science jobs provide; it is not set here"
            )
        return ResolvedAuth(mode=AuthMode.RESOURCE_PRINCIPAL, requested=requested)
    if requested is AuthMode.INSTANCE_PRINCIPAL:
        endpoint = environ.get("OCI_FEDERATION_ENDPOINT", "").strip() or None
        if endpoint and not endpoint.startswith(("https://", "http://127.", "http://localhost")):
            problems.append("OCI_FEDERATION_ENDPOINT: must be an https URL")
        return ResolvedAuth(
            mode=AuthMode.INSTANCE_PRINCIPAL, requested=requested, federation_endpoint=endpoint
        )
    try:
        config_path = expand_home(config_file)
    except UnknownHome as exc:
        problems.append(f"OCI_CONFIG_FILE: {exc}")
        mode = requested if requested is not AuthMode.AUTO else AuthMode.API_KEY
        return ResolvedAuth(mode=mode, requested=requested)
    if requested in (AuthMode.API_KEY, AuthMode.SECURITY_TOKEN):
        return _from_profile(requested, requested, config_path, profile, problems)
    # auto, with targets, outside a resource principal environment
    if config_path.is_file():
        return _from_profile(requested, None, config_path, profile, problems)
    if all_loopback:
        return ResolvedAuth(mode=AuthMode.NONE, requested=requested)
    problems.append(
        f"OCI_AUTH: no OCI credentials found (no {RESOURCE_PRINCIPAL_ENV} and no config file at "
        f"{config_path}); mount ~/.oci read-only and set OCI_CONFIG_FILE, or set OCI_AUTH to "
        "resource_principal, instance_principal, api_key, security_token or none"
    )
    return ResolvedAuth(mode=AuthMode.AUTO, requested=requested)
