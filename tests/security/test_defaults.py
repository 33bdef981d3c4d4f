"""Safe by default: loopback-only listeners, no anonymous Admin and no default password in Grafana,
no exposed Prometheus without basic auth, and an image that runs as a non-root user.

The running-stack checks use the real `aqua-metrics start` with the Grafana stand-in of
tests/support/fake_grafana.py, which resolves its admin password and anonymous access from its
environment the way the Grafana binary does (see that module for the rules and their sources).
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.settings import ConfigError, load_settings
from app.stack.binaries import GrafanaInstall
from app.stack.components import grafana_environment, prometheus_argv
from app.stack.layout import DataLayout
from app.stack.runtime import render_web_config
from app.stack.start import StackPlan, prepare
from testkit.binaries import REPO_ROOT
from testkit.stack import Stack, base_environment, short_tmp_dir
from tests.support.fake_grafana import (
    GRAFANA_DEFAULT_ADMIN_PASSWORD,
    install_fake_grafana,
    resolve_admin_password,
    resolve_anonymous,
)
from tests.support.netstat import listening_addresses

DOCKERFILE = REPO_ROOT / "Dockerfile"


# --- the running stack, with nothing but defaults ---------------------------------------------


@pytest.fixture(scope="module")
def default_stack():
    grafana = install_fake_grafana(short_tmp_dir("aq-gf-"))
    stack = Stack.create(GRAFANA_ENABLED="true", GRAFANA_BIN=str(grafana))
    stack.start()
    yield stack
    stack.cleanup()


@pytest.mark.stack
def test_proxy_and_prometheus_listen_on_loopback_only_beside_a_stand_in_grafana(default_stack):
    ports = default_stack.ports
    proxy = listening_addresses(ports["PROXY_PORT"])
    prometheus = listening_addresses(ports["PROMETHEUS_PORT"])
    grafana = listening_addresses(ports["GRAFANA_PORT"])
    assert grafana, "the listener table is not being read (the stand-in Grafana's port not found)"
    assert proxy == {"127.0.0.1"}, f"proxy listens on {proxy}"
    assert prometheus == {"127.0.0.1"}, f"Prometheus listens on {prometheus}"


def _grafana_api_user(port: int, password: str | None) -> int:
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
def test_stand_in_grafana_run_by_the_stack_has_no_default_password_and_no_anonymous_access(
    default_stack,
):
    port = default_stack.ports["GRAFANA_PORT"]
    generated = (default_stack.data_dir / "secrets" / "grafana-admin-password").read_text().strip()
    assert _grafana_api_user(port, None) == 401, "anonymous access"
    assert _grafana_api_user(port, GRAFANA_DEFAULT_ADMIN_PASSWORD) == 401, "admin/admin works"
    assert _grafana_api_user(port, generated) == 200, "the announced password does not work"


# --- Grafana's environment, as app.stack.components builds it -------------------------------------


def _grafana_env(tmp_path: Path, capsys, **settings: str) -> tuple[dict[str, str], DataLayout]:
    """What `aqua-metrics run grafana` would exec Grafana with, after `start` prepared DATA_DIR."""
    env = base_environment({"DATA_DIR": str(tmp_path / "data"), **settings})
    loaded = load_settings(env)
    layout = DataLayout(loaded.data_dir)
    install = GrafanaInstall(binary=Path("/usr/share/grafana/bin/grafana"), home=Path("/g"))
    prepare(StackPlan(loaded, layout, Path("/bin/prometheus"), install))
    capsys.readouterr()
    return grafana_environment(loaded, layout, env), layout


def test_default_grafana_environment_has_no_default_password(tmp_path, capsys):
    env, layout = _grafana_env(tmp_path, capsys)
    generated = layout.grafana_admin_password.read_text().strip()
    assert len(generated) >= 16
    resolved = resolve_admin_password(env)
    assert resolved != GRAFANA_DEFAULT_ADMIN_PASSWORD, (
        "Grafana would start with admin/admin: the binary ignores *__FILE variables "
        f"(GF_SECURITY_ADMIN_PASSWORD={env.get('GF_SECURITY_ADMIN_PASSWORD')!r}, "
        f"GF_SECURITY_ADMIN_PASSWORD__FILE={env.get('GF_SECURITY_ADMIN_PASSWORD__FILE')!r})"
    )
    assert resolved == generated


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"GF_AUTH_ANONYMOUS_ENABLED": "true"},  # Grafana's own switch, passed by a user
        {"GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"},
        {"GF_USERS_ALLOW_SIGN_UP": "true"},
    ],
)
def test_default_grafana_environment_has_no_anonymous_access(tmp_path, capsys, settings):
    env, _ = _grafana_env(tmp_path, capsys, **settings)
    assert resolve_anonymous(env) == (False, "Viewer")
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_anonymous_access_when_asked_for_is_viewer_only(tmp_path, capsys):
    env, _ = _grafana_env(tmp_path, capsys, GRAFANA_ANONYMOUS_VIEWER="true")
    assert resolve_anonymous(env) == (True, "Viewer")


@pytest.mark.parametrize("role", ["Admin", "Editor", "admin", " Admin ", "$__env{ROLE}", "${ROLE}"])
def test_an_anonymous_role_above_viewer_is_refused(role):
    with pytest.raises(ConfigError) as refused:
        load_settings(base_environment({"GF_AUTH_ANONYMOUS_ORG_ROLE": role, "ROLE": "Admin"}))
    assert any(p.startswith("GF_AUTH_ANONYMOUS_ORG_ROLE:") for p in refused.value.problems)


def test_a_user_supplied_admin_password_is_the_one_grafana_gets(tmp_path, capsys):
    env, _ = _grafana_env(tmp_path, capsys, GF_SECURITY_ADMIN_PASSWORD="chosen-by-the-user")
    assert resolve_admin_password(env) == "chosen-by-the-user"
    secret_file = tmp_path / "admin-password"
    secret_file.write_text("from-a-docker-secret\n")
    env, _ = _grafana_env(
        tmp_path / "second", capsys, GF_SECURITY_ADMIN_PASSWORD__FILE=str(secret_file)
    )
    assert resolve_admin_password(env) == "from-a-docker-secret"


# --- Prometheus exposure --------------------------------------------------------------------------


def test_by_default_proxy_and_prometheus_are_configured_for_loopback():
    settings = load_settings(base_environment())
    assert settings.proxy.host == "127.0.0.1"
    assert settings.prometheus.listen_host == "127.0.0.1"
    assert settings.prometheus.expose is False


@pytest.mark.parametrize(
    "password_env",
    [{}, {"PROMETHEUS_BASIC_AUTH_PASSWORD": ""}],
)
def test_exposing_prometheus_without_a_password_is_refused(password_env):
    with pytest.raises(ConfigError) as refused:
        load_settings(base_environment({"PROMETHEUS_EXPOSE": "true", **password_env}))
    assert any(p.startswith("PROMETHEUS_EXPOSE:") for p in refused.value.problems)


def test_exposing_prometheus_with_an_empty_password_file_is_refused(tmp_path):
    empty = tmp_path / "pw"
    empty.write_text("\n")
    with pytest.raises(ConfigError):
        load_settings(
            base_environment(
                {"PROMETHEUS_EXPOSE": "true", "PROMETHEUS_BASIC_AUTH_PASSWORD__FILE": str(empty)}
            )
        )


def test_start_refuses_to_expose_prometheus_without_a_password_before_binding_anything():
    data_dir = short_tmp_dir()
    result = subprocess.run(
        [sys.executable, "-m", "app", "start"],
        env=base_environment({"DATA_DIR": str(data_dir), "PROMETHEUS_EXPOSE": "true"}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("aqua-metrics: PROMETHEUS_EXPOSE: exposing Prometheus requires")
    assert not (data_dir / "runtime").exists()


def test_an_exposed_prometheus_gets_basic_auth_with_a_hashed_password(tmp_path):
    settings = load_settings(
        base_environment(
            {
                "PROMETHEUS_EXPOSE": "true",
                "PROMETHEUS_BASIC_AUTH_PASSWORD": "exposed-pw-123456",
                "DATA_DIR": str(tmp_path),
            }
        )
    )
    assert settings.prometheus.listen_host == "0.0.0.0"
    layout = DataLayout(tmp_path)
    argv = prometheus_argv(Path("/bin/prometheus"), settings, layout)
    assert f"--web.config.file={layout.prometheus_web_config}" in argv
    users = render_web_config(settings)["basic_auth_users"]
    assert list(users) == ["prometheus"]
    assert users["prometheus"].startswith("$2") and "exposed-pw-123456" not in users["prometheus"]


# --- the image ------------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    joined, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        joined.append((keyword.upper(), args.strip()))
        pending = ""
    return joined


def _final_stage() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Instructions of the Dockerfile's last stage and the ARG defaults visible in it."""
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            stages.append([])
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif stages:
            stages[-1].append((keyword, args))
    assert stages, "no FROM in the Dockerfile"
    variables = dict(global_args)
    for keyword, args in stages[-1]:
        if keyword == "ARG":
            name, sep, default = args.partition("=")
            if sep:
                variables[name.strip()] = default.strip().strip('"')
    return stages[-1], variables


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value
    )


def test_the_image_runs_as_a_non_root_user():
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    stage, variables = _final_stage()
    users = [_expand(args, variables) for keyword, args in stage if keyword == "USER"]
    assert users, "the final stage never sets USER: the container would run as root"
    user = users[-1].partition(":")[0]
    assert "$" not in user, f"USER {users[-1]} has no default"
    assert user not in {"root", "0"}, f"the final stage runs as {users[-1]}"
    if not user.isdigit():
        created = [
            _expand(args, variables)
            for keyword, args in stage
            if keyword == "RUN" and re.search(rf"useradd\b.*\b{re.escape(user)}\b", args)
        ]
        assert created, f"user {user!r} is not created in the final stage"
        assert not re.search(r"--uid[ =]0\b|-u 0\b", created[0]), "the user has uid 0"


def test_the_image_environment_keeps_the_safe_defaults():
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    stage, variables = _final_stage()
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for name, value in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                env[name] = _expand(value.strip('"'), variables)
    assert env.get("PROXY_HOST", "127.0.0.1") == "127.0.0.1"
    assert env.get("PROMETHEUS_EXPOSE", "false").lower() in {"false", "0", "no", "off"}
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "false").lower() == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert "PROMETHEUS_BASIC_AUTH_PASSWORD" not in env
