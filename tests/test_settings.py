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


def test_replica_settings(tmp_path):
    # Several replicas behind one deployment (issue 11): the tracker's ages follow the interval.
    settings = load_settings({"DATA_DIR": str(tmp_path), "SCRAPE_INTERVAL": "30s"})
    assert settings.proxy.scrape_interval_seconds == 30.0
    assert settings.proxy.replica_fetch_cap == 40
    capped = load_settings({"DATA_DIR": str(tmp_path), "REPLICA_FETCH_CAP": "3"})
    assert capped.proxy.replica_fetch_cap == 3
    for value, expected in (
        ("41", "REPLICA_FETCH_CAP: at most 40, got 41"),
        ("0", "REPLICA_FETCH_CAP: must be greater than 0"),
        ("many", "REPLICA_FETCH_CAP: 'many' is not a whole number"),
    ):
        found = problems({"DATA_DIR": str(tmp_path), "REPLICA_FETCH_CAP": value})
        assert any(line.startswith(expected) for line in found), found
