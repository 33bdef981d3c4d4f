"""The Alertmanager data source Grafana provisions, checked against Grafana's documented keys.

https://grafana.com/docs/grafana/latest/datasources/alertmanager/#provision-the-alertmanager-data-source
documents `jsonData.implementation` (mimir, cortex or prometheus) and
`jsonData.handleGrafanaManagedAlerts`; the common keys are those of the provisioning page
(tests/test_grafana_provisioning.py holds them).
"""

from __future__ import annotations

from app.settings import load_settings
from app.stack import components
from app.stack.layout import DataLayout
from tests.test_grafana_provisioning import (
    DATASOURCE_FILE_KEYS,
    DATASOURCE_KEYS,
    DATASOURCES,
    PROVISIONING,
    env_refs,
    interpolate,
    load,
    stack_env,
)

ALERTMANAGER_DATASOURCE = PROVISIONING / "datasources" / "alertmanager.yaml"
ALERTMANAGER_JSON_DATA_KEYS = {"implementation", "handleGrafanaManagedAlerts"}


def test_the_file_uses_documented_keys_only():
    config = load(ALERTMANAGER_DATASOURCE)
    assert set(config) <= DATASOURCE_FILE_KEYS
    (ds,) = config["datasources"]
    assert set(ds) <= DATASOURCE_KEYS
    assert set(ds["jsonData"]) <= ALERTMANAGER_JSON_DATA_KEYS


def test_one_prometheus_alertmanager_with_a_fixed_uid_that_grafana_alerts_never_reach():
    (ds,) = interpolate(load(ALERTMANAGER_DATASOURCE), stack_env(ALERTMANAGER_PORT="9555"))[
        "datasources"
    ]
    assert (ds["type"], ds["uid"], ds["access"]) == ("alertmanager", "aqua-alertmanager", "proxy")
    assert ds["url"] == "http://localhost:9555"
    assert ds["jsonData"] == {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}
    assert ds["isDefault"] is False, "Prometheus stays the default data source"


def test_prometheus_points_its_alerts_at_the_alertmanager_data_source():
    (prometheus,) = load(DATASOURCES)["datasources"]
    (alertmanager,) = load(ALERTMANAGER_DATASOURCE)["datasources"]
    assert prometheus["jsonData"]["alertmanagerUid"] == alertmanager["uid"]


def test_the_stack_gives_grafana_the_port_the_file_reads(tmp_path):
    assert env_refs(load(ALERTMANAGER_DATASOURCE)) == {"ALERTMANAGER_PORT"}
    settings = load_settings({"DATA_DIR": str(tmp_path), "ALERTMANAGER_PORT": "9444"})
    layout = DataLayout(tmp_path)
    layout.secrets.mkdir(parents=True)
    layout.grafana_metrics_password.write_text("x\n")
    env = components.grafana_environment(settings, layout, {})
    assert env["ALERTMANAGER_PORT"] == "9444"
