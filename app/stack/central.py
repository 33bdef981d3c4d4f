"""This container as one collector of a central store: remote_write, agent mode, Grafana's datasource.

`start` applies these to what it renders into DATA_DIR:

- prometheus.yml gains `global.external_labels.aqua_monitor` (MONITOR_NAME) and, with
  REMOTE_WRITE_URL, one `remote_write` entry whose credentials are files under DATA_DIR/secrets
  (0600), referenced by `authorization.credentials_file` / `basic_auth.password_file`: no secret is
  ever written into prometheus.yml or logged.
- Agent mode drops what Prometheus refuses there (`rule_files`, `alerting`, `remote_read`) and
  Prometheus runs with `--agent` and its write-ahead log under DATA_DIR/prometheus-agent.
- Grafana's provisioning is rendered into DATA_DIR/runtime/grafana-provisioning: every file of the
  packaged tree is linked as it is, except the Prometheus datasource, which points at
  GRAFANA_DATASOURCE_URL when one is set. Its secrets stay out of the file: Grafana expands
  `${AQUA_DATASOURCE_*}` variables that `grafana_environment` sets.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from app.settings import GrafanaDatasourceSettings, HttpAuth, RemoteWriteSettings, Settings
from app.stack import files
from app.stack.layout import DataLayout

EXTERNAL_LABEL = "aqua_monitor"
REMOTE_WRITE_NAME = "central"
DATASOURCE_FILE = Path("datasources") / "prometheus.yaml"
# Fixed queue settings (Prometheus' defaults, written out so the config says what it does). The
# backlog of an outage waits in the WAL, not in these queues: Prometheus stops reading the WAL while
# the shards cannot send, retries every max_backoff, and catches up when the receiver is back.
# sample_age_limit stays 0 (off): no sample is dropped for being old.
QUEUE_DEFAULTS: dict[str, Any] = {
    "capacity": 10000,
    "min_shards": 1,
    "max_samples_per_send": 2000,
    "batch_send_deadline": "5s",
    "min_backoff": "30ms",
}
AGENT_REFUSED_KEYS = ("rule_files", "alerting", "remote_read")


def agent_wal_dir(layout: DataLayout) -> Path:
    """Agent mode's write-ahead log: apart from the server TSDB, so switching modes is safe."""
    return layout.data_dir / "prometheus-agent"


def remote_write_token_file(layout: DataLayout) -> Path:
    return layout.secrets / "remote-write-bearer-token"


def remote_write_password_file(layout: DataLayout) -> Path:
    return layout.secrets / "remote-write-basic-auth-password"


def grafana_provisioning_dir(layout: DataLayout) -> Path:
    return layout.runtime / "grafana-provisioning"


def _auth_config(auth: HttpAuth, token_file: Path, password_file: Path) -> dict[str, Any]:
    if auth.bearer_token is not None:
        return {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
    if auth.basic_auth is not None:
        return {
            "basic_auth": {"username": auth.basic_auth.user, "password_file": str(password_file)}
        }
    return {}


def remote_write_config(remote: RemoteWriteSettings, layout: DataLayout) -> dict[str, Any]:
    """One `remote_write` entry (credentials by file reference only)."""
    entry: dict[str, Any] = {"name": REMOTE_WRITE_NAME, "url": remote.url}
    entry.update(
        _auth_config(
            remote.auth, remote_write_token_file(layout), remote_write_password_file(layout)
        )
    )
    if remote.headers:
        entry["headers"] = dict(remote.headers)
    entry["queue_config"] = {
        **QUEUE_DEFAULTS,
        "max_shards": remote.max_shards,
        "max_backoff": remote.max_backoff,
    }
    return entry


def apply_to_prometheus_config(
    config: dict[str, Any], settings: Settings, layout: DataLayout
) -> None:
    """External label, remote_write and agent-mode restrictions, applied to the rendered config."""
    central = settings.central
    config.setdefault("global", {}).setdefault("external_labels", {})[EXTERNAL_LABEL] = (
        central.monitor_name
    )
    if central.remote_write is not None:
        config["remote_write"] = [remote_write_config(central.remote_write, layout)]
    else:
        config.pop("remote_write", None)
    if central.agent:
        for key in AGENT_REFUSED_KEYS:
            config.pop(key, None)
        config["global"].pop("evaluation_interval", None)


def remote_write_secret_files(settings: Settings, layout: DataLayout) -> dict[Path, str | None]:
    """The credential files Prometheus reads: content to write (0600), or None to remove a stale one."""
    remote = settings.central.remote_write
    auth = remote.auth if remote is not None else HttpAuth()
    return {
        remote_write_token_file(layout): auth.bearer_token.value + "\n"
        if auth.bearer_token
        else None,
        remote_write_password_file(layout): auth.basic_auth.password.value + "\n"
        if auth.basic_auth
        else None,
    }


def prometheus_storage_flags(settings: Settings, layout: DataLayout) -> list[str]:
    """`--agent` and its WAL path, or the server TSDB flags (agent mode refuses those)."""
    prometheus = settings.prometheus
    if settings.central.agent:
        return ["--agent", f"--storage.agent.path={agent_wal_dir(layout)}"]
    return [
        f"--storage.tsdb.path={layout.prometheus_data}",
        f"--storage.tsdb.retention.time={prometheus.retention_time}",
        f"--storage.tsdb.retention.size={prometheus.retention_size}",
    ]


# --- Grafana ------------------------------------------------------------------------------------


def _literal(value: str) -> str:
    """A value Grafana's provisioning must not expand (`$` is its expansion character)."""
    return value.replace("$", "$$")


def central_datasource(template: dict[str, Any], datasource: GrafanaDatasourceSettings) -> None:
    """Point the provisioned Prometheus datasource at the central store, in place."""
    (entry,) = (d for d in template["datasources"] if d.get("uid") == "aqua-prometheus")
    json_data = entry.setdefault("jsonData", {})
    # The central engine is not the local Prometheus 3.5: let Grafana use its generic dialect.
    json_data.pop("prometheusType", None)
    json_data.pop("prometheusVersion", None)
    for key in [k for k in json_data if k.startswith("httpHeaderName")]:
        del json_data[key]
    secure: dict[str, str] = {}
    entry["url"] = _literal(datasource.url)
    auth = datasource.auth
    entry["basicAuth"] = auth.basic_auth is not None
    entry["basicAuthUser"] = _literal(auth.basic_auth.user) if auth.basic_auth else ""
    if auth.basic_auth is not None:
        secure["basicAuthPassword"] = "${AQUA_DATASOURCE_BASIC_AUTH_PASSWORD}"
    headers = [(name, _literal(value)) for name, value in datasource.headers]
    if auth.bearer_token is not None:
        headers.insert(0, ("Authorization", "Bearer ${AQUA_DATASOURCE_BEARER_TOKEN}"))
    for number, (name, value) in enumerate(headers, start=1):
        json_data[f"httpHeaderName{number}"] = name
        secure[f"httpHeaderValue{number}"] = value
    entry["secureJsonData"] = secure


def datasource_environment(settings: Settings) -> dict[str, str]:
    """The variables the rendered datasource file refers to (empty strings when unused)."""
    datasource = settings.central.grafana_datasource
    auth = datasource.auth if datasource is not None else HttpAuth()
    return {
        "AQUA_DATASOURCE_BASIC_AUTH_PASSWORD": auth.basic_auth.password.value
        if auth.basic_auth
        else "",
        "AQUA_DATASOURCE_BEARER_TOKEN": auth.bearer_token.value if auth.bearer_token else "",
    }


def _link_tree(source: Path, target: Path, rendered: dict[Path, str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir()):
        relative = item.relative_to(files.grafana_provisioning_dir())
        destination = target / item.name
        if any(path.is_relative_to(relative) and path != relative for path in rendered):
            _link_tree(item, destination, rendered)
        elif relative in rendered:
            destination.write_text(rendered[relative], encoding="utf-8")
        else:
            destination.symlink_to(item)


def render_grafana_provisioning(settings: Settings, layout: DataLayout) -> Path:
    """Grafana's provisioning tree for this start, under runtime/; returns its folder."""
    source = files.grafana_provisioning_dir()
    target = grafana_provisioning_dir(layout)
    shutil.rmtree(target, ignore_errors=True)
    template_text = (source / DATASOURCE_FILE).read_text(encoding="utf-8")
    datasource = settings.central.grafana_datasource
    if datasource is None:
        rendered = template_text
    else:
        template = yaml.safe_load(template_text)
        central_datasource(template, datasource)
        rendered = (
            "# Rendered by aqua-metrics start from the packaged datasources/prometheus.yaml:\n"
            "# GRAFANA_DATASOURCE_URL replaces the local Prometheus.\n"
            + yaml.safe_dump(template, sort_keys=False)
        )
    _link_tree(source, target, {DATASOURCE_FILE: rendered})
    return target
