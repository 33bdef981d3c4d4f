"""Settings: every problem is one line naming the setting; defaults are safe."""

import pytest

from app.demo.fleet import OutageSchedule, demo_targets
from app.oci_config import AuthMode
from app.settings import ConfigError, load_settings, parse_duration

LOCAL = "http://127.0.0.1:8000/metrics"


def problems(env):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_defaults_serve_the_demo_on_loopback(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.proxy.targets == demo_targets(3)
    assert [t.url for t in settings.proxy.targets] == [
        "http://demo.invalid/demo-chat/metrics",
        "http://demo.invalid/demo-support-bot/metrics",
        "http://demo.invalid/demo-batch-jobs/metrics",
    ]
    assert settings.proxy.demo_outages == OutageSchedule(first_s=600.0)
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
        ({"DEMO_DEPLOYMENTS": "0"}, "DEMO_DEPLOYMENTS: '0' is not a whole number from 1 to 10"),
        ({"DEMO_DEPLOYMENTS": "11"}, "DEMO_DEPLOYMENTS: '11' is not a whole number from 1 to 10"),
        ({"DEMO_DEPLOYMENTS": "three"}, "DEMO_DEPLOYMENTS: 'three' is not a whole number"),
        ({"DEMO_OUTAGE_AFTER": "soon"}, "DEMO_OUTAGE_AFTER: 'soon' is not a duration"),
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


@pytest.mark.parametrize("count", [1, 3, 10])
def test_demo_deployments_sets_the_size_of_the_demo_fleet(tmp_path, count):
    env = {"DATA_DIR": str(tmp_path), "DEMO_DEPLOYMENTS": str(count), "DEMO_OUTAGE_AFTER": "75s"}
    settings = load_settings(env)
    names = [t.name for t in settings.proxy.targets]
    assert len(names) == len(set(names)) == count
    assert settings.proxy.demo_outages.first_s == 75


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


# ---- fleet discovery -------------------------------------------------------------------------

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaexample"
PROJECT = "ocid1.datascienceproject.oc1.iad.aaaaaaaexample"


def _discovery_env(tmp_path, api_key, **extra):
    return {
        "DATA_DIR": str(tmp_path),
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "OCI_COMPARTMENT_ID": COMPARTMENT,
        **extra,
    }


def test_discovery_is_off_by_default_and_on_with_a_compartment(tmp_path, api_key):
    assert load_settings({"DATA_DIR": str(tmp_path)}).proxy.discovery is None
    settings = load_settings(_discovery_env(tmp_path, api_key))
    discovery = settings.proxy.discovery
    assert discovery is not None
    assert discovery.compartment_ids == (COMPARTMENT,)
    assert discovery.region == api_key.region  # the config profile's region
    assert (discovery.scope.value, discovery.interval, discovery.interval_seconds) == (
        "aqua",
        "60s",
        60.0,
    )
    assert discovery.endpoint is None and discovery.project_id is None
    # Discovery on and no TARGET/TARGETS: no demo, and credentials are required (auto -> api_key).
    assert settings.proxy.targets == ()
    assert settings.proxy.auth.mode is AuthMode.API_KEY


def test_discovery_settings_are_read(tmp_path, api_key):
    other = "ocid1.tenancy.oc1..aaaaaaaother"
    env = _discovery_env(
        tmp_path,
        api_key,
        OCI_COMPARTMENT_ID=f"{COMPARTMENT}, {other},{COMPARTMENT}",
        OCI_REGION="eu-frankfurt-1",
        OCI_DATA_SCIENCE_ENDPOINT="http://127.0.0.1:9999/",
        DISCOVERY_SCOPE="ALL",
        DISCOVERY_PROJECT_ID=PROJECT,
        DISCOVERY_INTERVAL="1m30s",
        TARGET=LOCAL,
    )
    settings = load_settings(env)
    discovery = settings.proxy.discovery
    assert discovery.compartment_ids == (COMPARTMENT, other)
    assert discovery.region == "eu-frankfurt-1"
    assert discovery.endpoint == "http://127.0.0.1:9999"
    assert discovery.scope.value == "all" and discovery.project_id == PROJECT
    assert discovery.interval_seconds == 90.0
    assert [t.url for t in settings.proxy.targets] == [LOCAL]
    config = discovery.listing_config("eu-frankfurt-1")
    assert (config.compartment_ids, config.endpoint) == ((COMPARTMENT, other), discovery.endpoint)


def test_resource_principal_region_is_the_default(tmp_path):
    env = {
        "DATA_DIR": str(tmp_path),
        "OCI_COMPARTMENT_ID": COMPARTMENT,
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_RESOURCE_PRINCIPAL_REGION": "us-phoenix-1",
    }
    assert load_settings(env).proxy.discovery.region == "us-phoenix-1"


def test_instance_principal_region_is_left_to_the_metadata(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "OCI_COMPARTMENT_ID": COMPARTMENT}
    env["OCI_AUTH"] = "instance_principal"
    assert load_settings(env).proxy.discovery.region is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"OCI_COMPARTMENT_ID": "ocid1.vcn.oc1..x"},
            "OCI_COMPARTMENT_ID: 'ocid1.vcn.oc1..x' is not",
        ),
        ({"OCI_COMPARTMENT_ID": " , "}, "OCI_COMPARTMENT_ID: give one or more compartment OCIDs"),
        ({"OCI_REGION": "Ashburn!"}, "OCI_REGION: 'Ashburn!' is not a region"),
        (
            {"OCI_DATA_SCIENCE_ENDPOINT": "http://datascience.example.com"},
            "OCI_DATA_SCIENCE_ENDPOINT: 'http://datascience.example.com' uses plain http",
        ),
        (
            {"OCI_DATA_SCIENCE_ENDPOINT": "https://h.example.com/20190101"},
            "OCI_DATA_SCIENCE_ENDPOINT: give only scheme://host[:port]",
        ),
        ({"DISCOVERY_SCOPE": "mine"}, "DISCOVERY_SCOPE: 'mine' is not one of aqua, all"),
        ({"DISCOVERY_PROJECT_ID": "proj"}, "DISCOVERY_PROJECT_ID: 'proj' is not a Data Science"),
        ({"DISCOVERY_INTERVAL": "often"}, "DISCOVERY_INTERVAL: 'often' is not a duration"),
        ({"DISCOVERY_INTERVAL": "500ms"}, "DISCOVERY_INTERVAL: 500ms is shorter than 1s"),
        ({"OCI_AUTH": "none"}, "OCI_AUTH: fleet discovery (OCI_COMPARTMENT_ID) lists deployments"),
    ],
)
def test_each_bad_discovery_setting_is_one_line_naming_it(extra, expected, tmp_path, api_key):
    found = problems(_discovery_env(tmp_path, api_key, **extra))
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)


def test_discovery_without_a_known_region_says_to_set_oci_region(tmp_path):
    config = tmp_path / "config"
    key = tmp_path / "key.pem"
    key.write_text("not checked by settings\n")
    config.write_text(
        f"[DEFAULT]\nuser=ocid1.user.oc1..u\nfingerprint=aa:bb\ntenancy=ocid1.tenancy.oc1..t\n"
        f"key_file={key}\n"
    )
    env = {"DATA_DIR": str(tmp_path), "OCI_CONFIG_FILE": str(config)}
    env["OCI_COMPARTMENT_ID"] = COMPARTMENT
    assert problems(env) == [
        "OCI_REGION: not set, and the credentials name no region (no `region` in the config "
        "profile); set OCI_REGION to the region of the deployments (e.g. us-ashburn-1)"
    ]


def test_discovery_without_credentials_asks_for_them(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "OCI_CONFIG_FILE": str(tmp_path / "absent")}
    env["OCI_COMPARTMENT_ID"] = COMPARTMENT
    assert any(line.startswith("OCI_AUTH: no OCI credentials found") for line in problems(env))


@pytest.mark.parametrize(
    "name",
    ["OCI_DATA_SCIENCE_ENDPOINT", "DISCOVERY_SCOPE", "DISCOVERY_PROJECT_ID", "DISCOVERY_INTERVAL"],
)
def test_discovery_settings_without_a_compartment_are_a_mistake(name, tmp_path):
    found = problems({"DATA_DIR": str(tmp_path), name: "x"})
    assert found == [f"{name}: only used by fleet discovery; set OCI_COMPARTMENT_ID to turn it on"]


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


# --- central store: remote_write, agent mode, Grafana's datasource ------------------------------

CENTRAL = "https://mimir.example.invalid/api/v1/push"


def test_central_defaults_are_a_server_writing_nowhere(tmp_path):
    central = load_settings({"DATA_DIR": str(tmp_path)}).central
    assert central.mode == "server" and not central.agent
    assert central.remote_write is None and central.grafana_datasource is None
    assert central.monitor_name  # derived from the host: never empty


@pytest.mark.parametrize(
    ("credentials", "extra", "region"),
    [
        ("none", {"OCI_RESOURCE_PRINCIPAL_REGION": "eu-frankfurt-1"}, "eu-frankfurt-1"),
        # Discovery with an API key: OCI_REGION, else the config profile's region.
        ("api_key", {"OCI_COMPARTMENT_ID": COMPARTMENT}, "profile"),
        ("api_key", {"OCI_COMPARTMENT_ID": COMPARTMENT, "OCI_REGION": "eu-paris-1"}, "eu-paris-1"),
        (
            "none",
            {
                "OCI_COMPARTMENT_ID": COMPARTMENT,
                "OCI_AUTH": "instance_principal",
                "OCI_REGION": "ap-tokyo-1",
            },
            "ap-tokyo-1",
        ),
    ],
)
def test_monitor_name_default_is_stable_and_names_the_region(
    credentials, extra, region, tmp_path, api_key
):
    """`<region>-<host>`: the region as settings know it, the host as without a region."""
    host_only = load_settings({"DATA_DIR": str(tmp_path)}).central.monitor_name
    env = {"DATA_DIR": str(tmp_path), **extra}
    if credentials == "api_key":
        env["OCI_CONFIG_FILE"] = str(api_key.config_path)
    expected_region = api_key.region if region == "profile" else region
    first = load_settings(env).central.monitor_name
    assert first == load_settings(env).central.monitor_name
    assert first == f"{expected_region}-{host_only}"
    assert load_settings({**env, "MONITOR_NAME": "fra-prod"}).central.monitor_name == "fra-prod"


def test_monitor_name_without_any_region_is_the_host(tmp_path):
    """An instance principal without OCI_REGION: its region is known only to the metadata."""
    env = {"DATA_DIR": str(tmp_path), "OCI_COMPARTMENT_ID": COMPARTMENT}
    host_only = load_settings({"DATA_DIR": str(tmp_path)}).central.monitor_name
    assert load_settings({**env, "OCI_AUTH": "instance_principal"}).central.monitor_name == (
        host_only
    )


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
