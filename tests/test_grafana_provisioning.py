"""Checks of Grafana's provisioning files, against what Grafana documents and does with them.

Grafana cannot run here, so the rules Grafana applies when it reads these files are restated below,
each with its source:

- Keys: https://grafana.com/docs/grafana/latest/administration/provisioning/ (sections "Data
  sources" and "Dashboards") and, for Prometheus' jsonData,
  https://grafana.com/docs/grafana/latest/datasources/prometheus/#provision-the-data-source.
- Values (never keys) go through os.ExpandEnv; `$$` is a literal `$`
  (pkg/services/provisioning/values/values.go). Booleans are then parsed with Go's
  strconv.ParseBool and integers with strconv.ParseInt, so an empty value for a boolean key fails.
- Every folder under `provisioning/` is read at each start; a missing one is logged at ERROR level
  (pkg/services/provisioning/{plugins,alerting}/config_reader.go: "Failed to read plugin
  provisioning files from directory", "can't read alerting provisioning files from directory").
  The dashboards, datasources and plugins readers skip files not ending in .yaml/.yml; the alerting
  reader also parses .json and warns about ("invalid suffix ... skipping") any other file. So
  `alerting/` and `plugins/` exist, each holding one YAML file that provisions nothing, and no
  folder holds a README or other stray file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support.dashboards import REPO_ROOT, iter_panels, load_dashboards

PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
DATASOURCES = PROVISIONING / "datasources" / "prometheus.yaml"
PROVIDERS = PROVISIONING / "dashboards" / "aqua.yaml"
HOME_DASHBOARD = PROVISIONING / "dashboards" / "aqua" / "aqua-fleet.json"

# https://grafana.com/docs/grafana/latest/administration/provisioning/#data-sources
DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {
    "name",
    "type",
    "access",
    "orgId",
    "uid",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
    "version",
    "editable",
}
# The jsonData settings documented for Prometheus (common HTTP ones and Prometheus' own).
PROMETHEUS_JSON_DATA_KEYS = {
    "tlsAuth",
    "tlsAuthWithCACert",
    "tlsSkipVerify",
    "serverName",
    "timeout",
    "timeInterval",
    "httpMethod",
    "customQueryParameters",
    "manageAlerts",
    "alertmanagerUid",
    "keepCookies",
    "sigV4Auth",
    "sigV4AuthType",
    "sigV4ExternalId",
    "sigV4AssumeRoleArn",
    "sigV4Region",
    "sigV4Profile",
    "prometheusVersion",
    "prometheusType",
    "cacheLevel",
    "incrementalQuerying",
    "incrementalQueryOverlapWindow",
    "disableRecordingRules",
    "exemplarTraceIdDestinations",
}
SECURE_JSON_DATA_KEYS = {
    "tlsCACert",
    "tlsClientCert",
    "tlsClientKey",
    "password",
    "basicAuthPassword",
    "sigV4AccessKey",
    "sigV4SecretKey",
}
# https://grafana.com/docs/grafana/latest/administration/provisioning/#dashboards
PROVIDER_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "updateIntervalSeconds",
    "allowUiUpdates",
    "options",
}
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}

# The environment the stack gives Grafana (the contract these files rely on).
STACK_ENV = {
    "PROMETHEUS_PORT",
    "SCRAPE_INTERVAL",
    "AQUA_PROMETHEUS_BASIC_AUTH",
    "AQUA_PROMETHEUS_BASIC_AUTH_USER",
    "AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD",
    "GF_PATHS_PROVISIONING",
}
GO_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
BOOL_KEYS = {"basicAuth", "withCredentials", "isDefault", "editable", "prune"}
BOOL_KEYS |= {"disableDeletion", "allowUiUpdates", "foldersFromFilesStructure"}
INT_KEYS = {"orgId", "version", "updateIntervalSeconds", "apiVersion"}

_ENV_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand_env(value: str, env: dict[str, str]) -> str:
    """Grafana's interpolation of a provisioning value: os.ExpandEnv per `$$`-separated part."""
    return "$".join(
        _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), ""), part)
        for part in value.split("$$")
    )


def env_refs(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(env_refs(v) for v in node)) if node else set()
    if isinstance(node, str):
        return {a or b for a, b in _ENV_REF.findall(node.replace("$$", ""))}
    return set()


def interpolate(node, env: dict[str, str]):
    """The file as Grafana sees it after interpolation, scalars typed the way Go parses them."""
    if isinstance(node, dict):
        return {key: _typed(key, interpolate(value, env)) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if isinstance(node, str):
        return expand_env(node, env)
    return node


def _typed(key: str, value):
    if key in BOOL_KEYS and isinstance(value, str):
        if value not in GO_BOOLS:
            raise ValueError(f"{key}: {value!r} is not a Go boolean (strconv.ParseBool)")
        return value.lower() in {"1", "t", "true"}
    if key in INT_KEYS and isinstance(value, str):
        return int(value)
    return value


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def stack_env(**overrides: str) -> dict[str, str]:
    env = {
        "PROMETHEUS_PORT": "9090",
        "SCRAPE_INTERVAL": "15s",
        "AQUA_PROMETHEUS_BASIC_AUTH": "false",
        "AQUA_PROMETHEUS_BASIC_AUTH_USER": "",
        "AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD": "",
        "GF_PATHS_PROVISIONING": str(PROVISIONING),
    }
    env.update(overrides)
    return env


# --- data source -------------------------------------------------------------------------------


def test_datasource_file_uses_documented_keys_only():
    config = load(DATASOURCES)
    assert config["apiVersion"] == 1
    assert set(config) <= DATASOURCE_FILE_KEYS
    for ds in config["datasources"]:
        assert set(ds) <= DATASOURCE_KEYS, set(ds) - DATASOURCE_KEYS
        assert set(ds.get("jsonData", {})) <= PROMETHEUS_JSON_DATA_KEYS
        assert set(ds.get("secureJsonData", {})) <= SECURE_JSON_DATA_KEYS


def test_exactly_one_prometheus_datasource_with_the_fixed_uid():
    (ds,) = load(DATASOURCES)["datasources"]
    assert ds["name"] == "Prometheus"
    assert ds["type"] == "prometheus"
    assert ds["uid"] == "aqua-prometheus"
    assert ds["access"] == "proxy"
    assert ds["isDefault"] is True
    assert ds["editable"] is False
    assert ds["url"] == "http://localhost:${PROMETHEUS_PORT}"
    assert ds["jsonData"]["timeInterval"] == "${SCRAPE_INTERVAL}"
    assert ds["jsonData"]["httpMethod"] == "POST"
    assert ds["jsonData"]["prometheusType"] == "Prometheus"
    assert ds["jsonData"]["prometheusVersion"] == "3.5.0"
    assert ds["basicAuth"] == "${AQUA_PROMETHEUS_BASIC_AUTH}"
    assert ds["basicAuthUser"] == "${AQUA_PROMETHEUS_BASIC_AUTH_USER}"
    assert ds["secureJsonData"] == {"basicAuthPassword": "${AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD}"}


def test_provisioning_reads_only_the_stack_environment():
    refs = env_refs(load(DATASOURCES)) | env_refs(load(PROVIDERS))
    assert refs == STACK_ENV


def test_interpolated_datasource_is_valid_without_basic_auth():
    (ds,) = interpolate(load(DATASOURCES), stack_env())["datasources"]
    assert ds["url"] == "http://localhost:9090"
    assert ds["basicAuth"] is False
    assert ds["jsonData"]["timeInterval"] == "15s"


def test_interpolated_datasource_with_basic_auth():
    env = stack_env(
        AQUA_PROMETHEUS_BASIC_AUTH="true",
        AQUA_PROMETHEUS_BASIC_AUTH_USER="grafana",
        AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD="pa$word",
    )
    (ds,) = interpolate(load(DATASOURCES), env)["datasources"]
    assert ds["basicAuth"] is True
    assert ds["basicAuthUser"] == "grafana"
    # Grafana expands the file's text once; a `$` inside the variable's value is kept as is.
    assert ds["secureJsonData"]["basicAuthPassword"] == "pa$word"


def test_empty_basic_auth_switch_would_stop_provisioning():
    # Documents the contract: the stack must set "false", never leave it empty.
    with pytest.raises(ValueError, match=r"strconv\.ParseBool"):
        interpolate(load(DATASOURCES), stack_env(AQUA_PROMETHEUS_BASIC_AUTH=""))


def test_dashboards_reference_only_the_provisioned_datasource():
    uids = {ds["uid"] for ds in load(DATASOURCES)["datasources"]}
    for uid, dashboard in load_dashboards().items():
        refs = re.findall(r'"uid": "([^"]+)"', json.dumps(dashboard["panels"]))
        for ref in refs:
            assert ref == "${datasource}" or ref in uids, f"{uid}: unknown datasource {ref}"
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "datasource":
                assert variable["current"]["value"] in uids
        for panel in iter_panels(dashboard):
            if panel["type"] == "alertlist":
                names = {ds["name"] for ds in load(DATASOURCES)["datasources"]}
                assert panel["options"]["datasource"] in names


# --- dashboard provider ---------------------------------------------------------------------------


def test_provider_file_uses_documented_keys_only():
    config = load(PROVIDERS)
    assert config["apiVersion"] == 1
    assert set(config) <= PROVIDER_FILE_KEYS
    names = [provider["name"] for provider in config["providers"]]
    assert len(names) == len(set(names)), "Grafana rejects duplicate provider names"
    for provider in config["providers"]:
        assert set(provider) <= PROVIDER_KEYS, set(provider) - PROVIDER_KEYS
        assert set(provider["options"]) <= PROVIDER_OPTION_KEYS


def test_provider_settings():
    (provider,) = load(PROVIDERS)["providers"]
    assert provider["name"] == "aqua"
    assert provider["folder"] == "AQUA"
    assert provider["type"] == "file"
    assert provider["disableDeletion"] is True
    assert provider["allowUiUpdates"] is False
    assert isinstance(provider["updateIntervalSeconds"], int)
    assert provider["updateIntervalSeconds"] >= 10
    assert provider["options"]["foldersFromFilesStructure"] is False
    assert provider["options"]["path"] == "${GF_PATHS_PROVISIONING}/dashboards/aqua"


def test_provider_path_holds_the_dashboard_files():
    (provider,) = interpolate(load(PROVIDERS), stack_env())["providers"]
    path = Path(provider["options"]["path"])
    assert path.is_dir()
    files = sorted(p.name for p in path.glob("*.json"))
    assert files == ["aqua-fleet.json", "monitoring-health.json", "vllm-deployment.json"]
    for file in path.glob("*.json"):
        dashboard = json.loads(file.read_text(encoding="utf-8"))
        assert dashboard["uid"] and dashboard["title"], "Grafana rejects a dashboard without title"


def test_provider_path_follows_the_provisioning_directory(tmp_path):
    (provider,) = interpolate(load(PROVIDERS), stack_env(GF_PATHS_PROVISIONING=str(tmp_path)))[
        "providers"
    ]
    assert provider["options"]["path"] == f"{tmp_path}/dashboards/aqua"


def test_home_dashboard_file_exists():
    # The stack points GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH at this file.
    assert HOME_DASHBOARD.is_file()
    assert json.loads(HOME_DASHBOARD.read_text(encoding="utf-8"))["uid"] == "aqua-fleet"


def test_dashboard_json_needs_no_environment():
    # Grafana does not interpolate the environment inside dashboard files.
    for path in (PROVISIONING / "dashboards" / "aqua").glob("*.json"):
        text = path.read_text(encoding="utf-8")
        for name in STACK_ENV:
            assert name not in text, f"{path.name} refers to ${name}, which Grafana won't expand"


# The folders Grafana's provisioning readers scan, each with apiVersion 1 files only.
SCANNED_FOLDERS = ("alerting", "dashboards", "datasources", "plugins")


def test_every_scanned_folder_exists_and_holds_only_provisioning_yaml():
    assert sorted(p.name for p in PROVISIONING.iterdir()) == sorted(SCANNED_FOLDERS)
    for sub in SCANNED_FOLDERS:
        files = [p for p in (PROVISIONING / sub).iterdir() if p.is_file()]
        assert files, f"{sub}/ needs a file, or git and the wheel drop the folder"
        for path in files:
            assert path.suffix == ".yaml", f"{path}: Grafana skips or warns about other files"
            assert load(path)["apiVersion"] == 1, path


def test_alerting_and_plugin_files_provision_nothing():
    # Alert rules live in Prometheus (rules/); no app plugin exists in an air-gapped install.
    (alerting,) = (PROVISIONING / "alerting").iterdir()
    assert load(alerting) == {"apiVersion": 1}
    (plugins,) = (PROVISIONING / "plugins").iterdir()
    assert load(plugins) == {"apiVersion": 1, "apps": []}
