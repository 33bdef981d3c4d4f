"""Settings: every problem is one line naming the setting; defaults are safe."""

import pytest

from app.oci_config import AuthMode
from app.settings import ConfigError, load_settings, parse_duration
from app.targets import demo_target

LOCAL = "http://127.0.0.1:8000/metrics"


def problems(env):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_defaults_serve_the_demo_on_loopback(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.proxy.targets == (demo_target(),)
    assert settings.proxy.targets[0].url == "http://demo.invalid/demo/metrics"
    assert settings.proxy.host == "127.0.0.1" and settings.proxy.port == 8080
    assert settings.prometheus.listen_host == "127.0.0.1" and settings.prometheus.port == 9090
    assert settings.grafana.port == 3000 and not settings.grafana.anonymous_viewer
    assert settings.proxy.auth.mode is AuthMode.NONE
    assert (settings.scrape_interval, settings.scrape_timeout) == ("15s", "10s")
    assert settings.data_dir == tmp_path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OCI_AUTH": "kerberos", "TARGET": LOCAL}, "OCI_AUTH: 'kerberos' is not one of"),
        ({"PROXY_PORT": "eighty"}, "PROXY_PORT: 'eighty' is not a port number"),
        ({"PROMETHEUS_PORT": "70000"}, "PROMETHEUS_PORT: '70000' is not a port number"),
        ({"GRAFANA_PORT": "8080"}, "GRAFANA_PORT: port 8080 is already used by PROXY_PORT"),
        ({"SCRAPE_INTERVAL": "soon"}, "SCRAPE_INTERVAL: 'soon' is not a duration"),
        (
            {"SCRAPE_INTERVAL": "5s", "SCRAPE_TIMEOUT": "10s"},
            "SCRAPE_TIMEOUT: 10s is longer than SCRAPE_INTERVAL 5s",
        ),
        ({"UPSTREAM_TIMEOUT_SECONDS": "-1"}, "UPSTREAM_TIMEOUT_SECONDS: must be greater than 0"),
        ({"MAX_RESPONSE_BYTES": "1.5"}, "MAX_RESPONSE_BYTES: '1.5' is not a whole number"),
        ({"PROMETHEUS_EXPOSE": "true"}, "PROMETHEUS_EXPOSE: exposing Prometheus requires"),
        ({"PROMETHEUS_EXPOSE": "maybe"}, "PROMETHEUS_EXPOSE: 'maybe' is not true or false"),
        ({"PROMETHEUS_RETENTION_SIZE": "lots"}, "PROMETHEUS_RETENTION_SIZE: 'LOTS' is not a size"),
        ({"GRAFANA_ENABLED": "sometimes"}, "GRAFANA_ENABLED: 'sometimes' is not one of"),
        (
            {"GF_AUTH_ANONYMOUS_ORG_ROLE": "Admin"},
            "GF_AUTH_ANONYMOUS_ORG_ROLE: anonymous users may only be Viewer",
        ),
        ({"TARGET": "ftp://x/metrics"}, "TARGET: 'ftp://x/metrics' is not an http(s) URL"),
    ],
)
def test_each_bad_setting_is_one_line_naming_it(env, expected, tmp_path):
    env = {"DATA_DIR": str(tmp_path), **env}
    found = problems(env)
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)


def test_all_problems_are_reported_at_once(tmp_path):
    found = problems({"PROXY_PORT": "x", "GRAFANA_PORT": "y", "OCI_AUTH": "z"})
    assert [line.split(":")[0] for line in found] == ["OCI_AUTH", "PROXY_PORT", "GRAFANA_PORT"]


def test_secrets_come_from_file_variants_and_are_never_printed(tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret-value\n")
    settings = load_settings(
        {
            "PROMETHEUS_EXPOSE": "true",
            "PROMETHEUS_BASIC_AUTH_PASSWORD__FILE": str(secret_file),
            "GF_SECURITY_ADMIN_PASSWORD": "admin-secret",
        }
    )
    assert settings.prometheus.basic_auth_password.value == "s3cret-value"
    assert settings.prometheus.listen_host == "0.0.0.0"
    assert "s3cret-value" not in repr(settings) and "admin-secret" not in repr(settings)


def test_secret_problems_never_echo_values(tmp_path):
    found = problems(
        {
            "GF_SECURITY_ADMIN_PASSWORD": "hunter2",
            "GF_SECURITY_ADMIN_PASSWORD__FILE": str(tmp_path / "missing"),
        }
    )
    assert found == [
        "GF_SECURITY_ADMIN_PASSWORD: set GF_SECURITY_ADMIN_PASSWORD or GF_SECURITY_ADMIN_PASSWORD__FILE, not both"
    ]
    found = problems({"PROMETHEUS_BASIC_AUTH_PASSWORD__FILE": str(tmp_path / "missing")})
    assert found[0].startswith("PROMETHEUS_BASIC_AUTH_PASSWORD__FILE: cannot read")


def test_auth_auto_without_credentials_tells_what_to_set(tmp_path):
    found = problems(
        {
            "TARGET": "https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.datasciencemodeldeployment.oc1.iad.abc",
            "OCI_CONFIG_FILE": str(tmp_path / "nope"),
        }
    )
    assert len(found) == 1
    assert found[0].startswith("OCI_AUTH: no OCI credentials found")
    assert (
        "OCI_AUTH to resource_principal, instance_principal, api_key, security_token or none"
        in found[0]
    )


def test_auth_auto_picks_resource_principal_from_environment():
    settings = load_settings({"TARGET": LOCAL, "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2"})
    assert settings.proxy.auth.mode is AuthMode.RESOURCE_PRINCIPAL


def test_auth_auto_uses_none_for_a_local_vllm_without_credentials(tmp_path):
    settings = load_settings({"TARGET": LOCAL, "OCI_CONFIG_FILE": str(tmp_path / "none")})
    assert settings.proxy.auth.mode is AuthMode.NONE


def test_resource_principal_without_environment_is_an_error():
    found = problems({"TARGET": LOCAL, "OCI_AUTH": "resource_principal"})
    assert found[0].startswith(
        "OCI_AUTH: resource_principal needs the OCI_RESOURCE_PRINCIPAL_VERSION"
    )


def write_config(tmp_path, body):
    path = tmp_path / "config"
    path.write_text(body)
    return path


def test_api_key_profile_problems(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("x")
    config = write_config(
        tmp_path,
        f"[DEFAULT]\nuser=ocid1.user.oc1..a\nfingerprint=aa\ntenancy=ocid1.tenancy.oc1..b\nregion=us-ashburn-1\nkey_file={key}\n"
        "[NOKEY]\nkey_file=/does/not/exist.pem\n[TOKEN]\nsecurity_token_file=token\n",
    )
    base = {"TARGET": LOCAL, "OCI_CONFIG_FILE": str(config)}
    assert load_settings({**base, "OCI_AUTH": "api_key"}).proxy.auth.mode is AuthMode.API_KEY
    assert load_settings(base).proxy.auth.mode is AuthMode.API_KEY
    found = problems({**base, "OCI_CONFIG_PROFILE": "MISSING"})
    assert found == [f"OCI_CONFIG_PROFILE: profile [MISSING] not found in {config}"]
    found = problems({**base, "OCI_CONFIG_PROFILE": "NOKEY"})
    assert "key_file /does/not/exist.pem does not exist" in found[0]
    # The TOKEN profile inherits key_file from DEFAULT but its token file is missing.
    found = problems({**base, "OCI_CONFIG_PROFILE": "TOKEN"})
    assert found[0].startswith("OCI_CONFIG_PROFILE ([TOKEN]") and "security_token_file" in found[0]


def test_missing_and_unparsable_config_files(tmp_path):
    found = problems(
        {"TARGET": LOCAL, "OCI_AUTH": "api_key", "OCI_CONFIG_FILE": str(tmp_path / "x")}
    )
    assert found == [f"OCI_CONFIG_FILE: no config file at {tmp_path / 'x'}"]
    broken = write_config(tmp_path, "this is not ini\n")
    found = problems({"TARGET": LOCAL, "OCI_AUTH": "api_key", "OCI_CONFIG_FILE": str(broken)})
    assert found[0].startswith("OCI_CONFIG_FILE: ") and "not a valid OCI config file" in found[0]


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("1m", 60), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "1x", "m", "1m1h"])
def test_bad_durations(text):
    assert parse_duration(text) is None


# --- central store: remote_write, agent mode, Grafana's datasource ------------------------------

CENTRAL = "https://mimir.example.invalid/api/v1/push"


def test_central_defaults_are_a_server_writing_nowhere(tmp_path):
    central = load_settings({"DATA_DIR": str(tmp_path)}).central
    assert central.mode == "server" and not central.agent
    assert central.remote_write is None and central.grafana_datasource is None
    assert central.monitor_name  # derived from the host: never empty


def test_monitor_name_default_is_stable_and_names_the_region(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "OCI_RESOURCE_PRINCIPAL_REGION": "eu-frankfurt-1"}
    first = load_settings(env).central.monitor_name
    assert first == load_settings(env).central.monitor_name
    assert first.startswith("eu-frankfurt-1-")
    assert load_settings({**env, "MONITOR_NAME": "fra-prod"}).central.monitor_name == "fra-prod"


def test_remote_write_with_bearer_token_from_a_file_and_tenant_headers(tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    central = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "REMOTE_WRITE_URL": CENTRAL,
            "REMOTE_WRITE_BEARER_TOKEN__FILE": str(token),
            "REMOTE_WRITE_HEADERS": "X-Scope-OrgID=tenant-a, THANOS-TENANT=x",
            "REMOTE_WRITE_MAX_SHARDS": "8",
        }
    ).central
    remote = central.remote_write
    assert remote.url == CENTRAL and remote.auth.bearer_token.value == "tok-123"
    assert remote.headers == (("X-Scope-OrgID", "tenant-a"), ("THANOS-TENANT", "x"))
    assert remote.max_shards == 8 and remote.max_backoff == "5s"
    assert "tok-123" not in repr(central)


def test_agent_mode_with_basic_auth_and_a_grafana_datasource(tmp_path):
    central = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "PROMETHEUS_MODE": "agent",
            "REMOTE_WRITE_URL": "http://127.0.0.1:8428/api/v1/write",
            "REMOTE_WRITE_BASIC_AUTH_USER": "writer",
            "REMOTE_WRITE_BASIC_AUTH_PASSWORD": "pw",
            "GRAFANA_DATASOURCE_URL": "https://mimir.example.invalid/prometheus",
            "GRAFANA_DATASOURCE_BEARER_TOKEN": "read-token",
            "GRAFANA_DATASOURCE_HEADERS": "X-Scope-OrgID=tenant-a",
        }
    ).central
    assert central.agent
    assert central.remote_write.auth.basic_auth.user == "writer"
    datasource = central.grafana_datasource
    assert datasource.url == "https://mimir.example.invalid/prometheus"
    assert datasource.auth.bearer_token.value == "read-token"
    assert datasource.headers == (("X-Scope-OrgID", "tenant-a"),)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PROMETHEUS_MODE": "edge"}, "PROMETHEUS_MODE: 'edge' is not one of server, agent"),
        ({"PROMETHEUS_MODE": "agent"}, "PROMETHEUS_MODE: agent mode forwards everything"),
        ({"REMOTE_WRITE_URL": "http://mimir.internal/api/v1/push"}, "REMOTE_WRITE_URL: use https"),
        ({"REMOTE_WRITE_URL": "ftp://mimir/x"}, "REMOTE_WRITE_URL: 'ftp://mimir/x' is not an"),
        (
            {"REMOTE_WRITE_URL": "https://u:p@mimir/x"},
            "REMOTE_WRITE_URL: put credentials in the auth settings",
        ),
        ({"REMOTE_WRITE_BEARER_TOKEN": "t"}, "REMOTE_WRITE_URL: auth or headers are set, but no"),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_BEARER_TOKEN": "t"}
            | {"REMOTE_WRITE_BASIC_AUTH_USER": "u", "REMOTE_WRITE_BASIC_AUTH_PASSWORD": "p"},
            "REMOTE_WRITE_BEARER_TOKEN: set a bearer token or basic auth, not both",
        ),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_BASIC_AUTH_USER": "u"},
            "REMOTE_WRITE_BASIC_AUTH_USER: set it together with REMOTE_WRITE_BASIC_AUTH_PASSWORD",
        ),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_HEADERS": "Authorization=Bearer x"},
            "REMOTE_WRITE_HEADERS: Authorization is set by Prometheus or the auth settings",
        ),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_HEADERS": "X-Scope-OrgID"},
            "REMOTE_WRITE_HEADERS: 'X-Scope-OrgID' is not Name=value",
        ),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_HEADERS": "A=1,a=2"},
            "REMOTE_WRITE_HEADERS: a is given twice",
        ),
        (
            {"REMOTE_WRITE_URL": CENTRAL, "REMOTE_WRITE_MAX_SHARDS": "0"},
            "REMOTE_WRITE_MAX_SHARDS: must be greater than 0",
        ),
        ({"MONITOR_NAME": "two words"}, "MONITOR_NAME: use 1-128 letters"),
        ({"MONITOR_NAME": "-x"}, "MONITOR_NAME: use 1-128 letters"),
        (
            {"GRAFANA_DATASOURCE_URL": "http://10.0.0.5:9009/prometheus"},
            "GRAFANA_DATASOURCE_URL: use https",
        ),
        (
            {"GRAFANA_DATASOURCE_BASIC_AUTH_PASSWORD": "p"},
            "GRAFANA_DATASOURCE_BASIC_AUTH_USER: set it together",
        ),
    ],
)
def test_each_bad_central_setting_is_one_line_naming_it(env, expected, tmp_path):
    found = problems({"DATA_DIR": str(tmp_path), **env})
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)
    assert not any(secret in line for line in found for secret in ("Bearer x", ":p@"))


def test_every_reserved_header_is_one_prometheus_refuses(promtool_path, tmp_path):
    """The refused list matches the real Prometheus: each name fails `promtool check config`."""
    import subprocess

    from app.settings import RESERVED_REMOTE_WRITE_HEADERS

    for header in sorted(RESERVED_REMOTE_WRITE_HEADERS):
        config = tmp_path / "prometheus.yml"
        config.write_text(f"remote_write:\n- url: https://x.invalid/\n  headers: {{{header}: v}}\n")
        result = subprocess.run(
            [str(promtool_path), "check", "config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0 and "header" in result.stdout + result.stderr, header
