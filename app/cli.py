"""The `aqua-metrics` command: check, discover, proxy, start, health, ctl, and the stack's programs.

Every subcommand gets its configuration from one `load_settings` call in `main`; a bad setting
prints one line per problem (`aqua-metrics: SETTING: what is wrong`) and exits 2, never with a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from app import __version__
from app.cli_help import command_help
from app.credentials import CredentialsError, build_credentials, credentials_problem
from app.errors import ConfigError
from app.oci_config import AuthMode
from app.settings import Settings, load_settings
from app.stack.layout import DataLayout
from app.targets import is_demo_url

EXIT_CONFIG = 2
EXIT_DISCOVERY_FAILED = 1

Handler = Callable[[argparse.Namespace, Settings], int]


def fail(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"aqua-metrics: {line}", file=sys.stderr)
    return EXIT_CONFIG


def describe(settings: Settings) -> list[str]:
    """Human summary of the resolved configuration: names, URLs, paths, never a secret."""
    proxy = settings.proxy
    lines = [f"auth: {proxy.auth.describe()}", "targets:"]
    for target in proxy.targets:
        if is_demo_url(target.url):
            lines.append(
                f"  {target.name}  built-in simulated vLLM deployment (no TARGET or TARGETS set)"
            )
            continue
        extra = ", ".join(f"{k}={v}" for k, v in target.labels.items() if k != "deployment")
        lines.append(f"  {target.name}  {target.url}" + (f"  [{extra}]" if extra else ""))
    if not proxy.targets:
        lines.append("  (none configured; discovery finds them)")
    discovery = proxy.discovery
    if discovery is not None:
        where = discovery.endpoint or f"the Data Science API of region {discovery.region}"
        if discovery.region is None:
            where = "the Data Science API of the instance's region (instance metadata)"
        lines += [
            f"discovery: every {discovery.interval}, "
            f"{'AQUA deployments' if discovery.scope.value == 'aqua' else 'all deployments'} "
            f"in {', '.join(discovery.compartment_ids)}"
            + (f", project {discovery.project_id}" if discovery.project_id else ""),
            f"  listed from {where}; `aqua-metrics discover` lists them now",
        ]
    lines += [
        f"proxy: {proxy.host}:{proxy.port}",
        f"prometheus: {settings.prometheus.listen_host}:{settings.prometheus.port}"
        + (" (basic auth)" if settings.prometheus.expose else ""),
        f"grafana: port {settings.grafana.port} (GRAFANA_ENABLED={settings.grafana.enabled})",
        f"scrape: every {settings.scrape_interval}, timeout {settings.scrape_timeout}",
        f"data: {settings.data_dir}",
        f"alerts: {describe_alerting(settings)}",
        *describe_central(settings),
    ]
    return lines


def describe_alerting(settings: Settings) -> str:
    """Where alerts go, by receiver kind and public identifiers only (never a URL or password)."""
    alerting = settings.alerting
    where = f"Alertmanager 127.0.0.1:{alerting.port}"
    if alerting.config_file is not None:
        return f"{where}, configuration from {alerting.config_file}"
    parts = []
    if alerting.topic_id:
        parts.append(f"OCI Notifications topic {alerting.topic_id}")
    if alerting.slack_webhook_url:
        parts.append("Slack")
    if alerting.webhook_url:
        parts.append("webhook")
    if alerting.email:
        parts.append(f"e-mail to {', '.join(alerting.email.to)} via {alerting.email.smarthost}")
    return f"{where}, to " + "; ".join(parts) if parts else f"{where}, no receiver (not delivered)"


def describe_central(settings: Settings) -> list[str]:
    """Mode, external label and destinations (URLs only: credentials are never printed)."""
    central = settings.central
    remote = central.remote_write
    datasource = central.grafana_datasource
    return [
        f"prometheus mode: {central.mode}; samples labelled aqua_monitor={central.monitor_name}",
        f"remote_write: {remote.url if remote else 'off'}",
        f"grafana datasource: {datasource.url if datasource else 'the local Prometheus'}",
    ]


def cmd_check(_: argparse.Namespace, settings: Settings) -> int:
    problem = credentials_problem(settings.proxy.auth)
    if problem is not None:
        raise CredentialsError(problem)
    instance_principal = settings.proxy.auth.mode is AuthMode.INSTANCE_PRINCIPAL
    print("aqua-metrics: configuration OK")
    for line in describe(settings):
        print(line)
    if instance_principal:
        print("note: instance principal credentials are built when the proxy starts")
    return 0


def cmd_discover(_: argparse.Namespace, settings: Settings) -> int:
    """One listing with the configured credentials: the fleet table, or one line saying why not."""
    discovery = settings.proxy.discovery
    if discovery is None:
        return fail(["OCI_COMPARTMENT_ID: not set; give the compartment(s) to list deployments in"])
    from app.discovery.listing import ListingError
    from app.discovery.service import discover_once, fleet_table
    from app.discovery.setup import build_lister, explicit_targets

    lister = build_lister(discovery, build_credentials(settings.proxy.auth))
    explicit = explicit_targets(settings.proxy.targets)
    try:
        fleet = discover_once(lister, explicit=explicit, scope=discovery.scope)
    except ListingError as error:
        hint = f"; {error.hint}" if error.hint else ""
        print(
            f"aqua-metrics: discovery failed ({error.kind}: {error.summary}){hint}",
            file=sys.stderr,
        )
        return EXIT_DISCOVERY_FAILED
    if not fleet.entries and not fleet.out_of_scope:
        print(f"no model deployments in {', '.join(discovery.compartment_ids)}")
        return 0
    print(fleet_table(fleet))
    return 0


def cmd_proxy(_: argparse.Namespace, settings: Settings) -> int:
    from app.listening import check_can_listen
    from app.logs import configure_logging
    from app.stack.parent_death import die_with_supervisord

    die_with_supervisord()

    # As `start` does: a port in use or an address not this machine's is one line, exit 2.
    proxy = settings.proxy
    check_can_listen("PROXY_PORT", proxy.host, proxy.port, "PROXY_HOST")
    configure_logging(proxy.log_level)
    credentials = build_credentials(proxy.auth)

    import uvicorn

    from app.header_deadline import header_deadline_protocol
    from app.server import create_app

    uvicorn.run(
        create_app(settings, credentials),
        host=settings.proxy.host,
        port=settings.proxy.port,
        log_config=None,
        log_level=settings.proxy.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        http=header_deadline_protocol(settings.proxy.header_timeout_seconds),
    )
    return 0


def cmd_start(_: argparse.Namespace, settings: Settings) -> int:
    from app.stack.start import start

    return start(settings)


def cmd_health(_: argparse.Namespace, settings: Settings) -> int:
    from app.stack.health import check_components
    from app.stack.start import resolve_grafana

    results = check_components(settings, resolve_grafana(settings) is not None)
    for result in results:
        print(f"{result.name}: {'ok' if result.ok else 'FAIL'} ({result.detail})")
    return 0 if all(result.ok for result in results) else 1


def cmd_test_alert(_: argparse.Namespace, settings: Settings) -> int:
    from app.alerts.test_alert import run_test_alert

    return run_test_alert(settings)


def cmd_ctl(args: argparse.Namespace, settings: Settings) -> int:
    """supervisorctl for the running stack (e.g. `aqua-metrics ctl status`), socket found for you."""
    from app.stack import files

    socket_path = DataLayout(settings.data_dir.resolve()).supervisor_socket
    env = {**os.environ, "AQUA_SUPERVISOR_SOCKET": str(socket_path)}
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(files.supervisord_conf())]
    os.execve(sys.executable, [*argv, *args.arguments], env)  # noqa: S606
    return 0  # not reached: exec replaced this process


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Internal: the programs supervisord starts. Not meant to be typed by users."""
    from app.stack import components, fatal_listener
    from app.stack.binaries import find_grafana, find_prometheus
    from app.stack.parent_death import die_with_supervisord

    die_with_supervisord()

    layout = DataLayout(settings.data_dir)
    if args.component == "fatal-listener":
        fatal_listener.run(layout.fatal_marker)
        return 0
    if args.component == "alertmanager":
        from app.stack.binaries import find_alertmanager

        alertmanager = find_alertmanager(settings)
        if alertmanager is None:
            return fail(["ALERTMANAGER_BIN: no alertmanager executable found"])
        components.exec_program(components.alertmanager_argv(alertmanager, settings, layout))
    if args.component == "prometheus":
        binary = find_prometheus(settings)
        if binary is None:
            return fail(["PROMETHEUS_BIN: no prometheus executable found"])
        # Start scraping only once the proxy answers, or the first discovery waits a full refresh.
        components.wait_for_proxy(settings)
        components.exec_program(components.prometheus_argv(binary, settings, layout))
    install = find_grafana(settings)
    if install is None:
        return fail(["GRAFANA_BIN: no grafana executable found"])
    env = components.grafana_environment(settings, layout, os.environ)
    components.exec_program(components.grafana_argv(install), env)
    return 0  # not reached: exec replaced this process


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqua-metrics",
        description="Monitor vLLM deployments on OCI AI Quick Actions "
        "(signing proxy, Prometheus, Alertmanager, Grafana). "
        "`aqua-metrics <command> --help` says what a command does and which settings it uses.",
    )
    parser.add_argument("--version", action="version", version=f"aqua-metrics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[str, Handler]] = {
        "check": ("validate the configuration and print what it resolves to", cmd_check),
        "discover": ("list the deployments discovery finds (OCI_COMPARTMENT_ID)", cmd_discover),
        "proxy": ("serve the signing proxy", cmd_proxy),
        "start": (
            "run the whole stack (proxy, Prometheus, Alertmanager, Grafana) under supervisord",
            cmd_start,
        ),
        "health": ("check that every component of a running stack answers", cmd_health),
        "test-alert": (
            "send a test notification through every configured alert receiver",
            cmd_test_alert,
        ),
    }
    for name, (help_text, handler) in commands.items():
        sub.add_parser(name, help=help_text, **command_help(name)).set_defaults(handler=handler)
    ctl = sub.add_parser(
        "ctl", help="supervisorctl for the running stack, e.g. `ctl status`", **command_help("ctl")
    )
    ctl.add_argument("arguments", nargs=argparse.REMAINDER)
    ctl.set_defaults(handler=cmd_ctl)
    run = sub.add_parser(
        "run",
        help="internal: a program of the stack, as supervisord starts it",
        **command_help("run"),
    )
    run.add_argument(
        "component", choices=["prometheus", "alertmanager", "grafana", "fatal-listener"]
    )
    run.set_defaults(handler=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return int(handler(args, load_settings()))
    except ConfigError as exc:
        return fail(exc.problems)
    except KeyboardInterrupt:
        return 130
