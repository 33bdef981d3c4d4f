"""The `aqua-metrics` command: check, proxy, start and the helpers the stack runs.

Every subcommand reads the configuration through `load_settings`; a bad setting prints one line
per problem (`aqua-metrics: SETTING: what is wrong`) and exits 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from app import __version__
from app.credentials import CredentialsError, build_credentials
from app.oci_config import AuthMode
from app.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def fail(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"aqua-metrics: {line}", file=sys.stderr)
    return EXIT_CONFIG


def describe(settings: Settings) -> list[str]:
    """Human summary of the resolved configuration: names, URLs, paths, never a secret."""
    proxy = settings.proxy
    lines = [f"auth: {proxy.auth.describe()}", "targets:"]
    for target in proxy.targets:
        if target.is_demo:
            lines.append(
                f"  {target.name}  built-in simulated vLLM deployment (no TARGET or TARGETS set)"
            )
            continue
        extra = ", ".join(f"{k}={v}" for k, v in target.labels.items() if k != "deployment")
        lines.append(f"  {target.name}  {target.url}" + (f"  [{extra}]" if extra else ""))
    prometheus_host = settings.prometheus.listen_host
    lines += [
        f"proxy: {proxy.host}:{proxy.port}",
        f"prometheus: {prometheus_host}:{settings.prometheus.port}"
        + (" (basic auth)" if settings.prometheus.expose else ""),
        f"grafana: port {settings.grafana.port} (GRAFANA_ENABLED={settings.grafana.enabled})",
        f"scrape: every {settings.scrape_interval}, timeout {settings.scrape_timeout}",
        f"data: {settings.data_dir}",
    ]
    return lines


def _load() -> Settings | int:
    try:
        return load_settings()
    except ConfigError as exc:
        return fail(exc.problems)


def cmd_check(_: argparse.Namespace) -> int:
    settings = _load()
    if isinstance(settings, int):
        return settings
    if settings.proxy.auth.mode is not AuthMode.INSTANCE_PRINCIPAL:
        try:
            build_credentials(settings.proxy.auth)
        except CredentialsError as exc:
            return fail([str(exc)])
    print("aqua-metrics: configuration OK")
    for line in describe(settings):
        print(line)
    if settings.proxy.auth.mode is AuthMode.INSTANCE_PRINCIPAL:
        print(
            "note: instance principal credentials are built when the proxy starts (metadata service)"
        )
    return 0


def cmd_proxy(_: argparse.Namespace) -> int:
    settings = _load()
    if isinstance(settings, int):
        return settings
    from app.logs import configure_logging

    configure_logging(settings.proxy.log_level)
    try:
        credentials = build_credentials(settings.proxy.auth)
    except CredentialsError as exc:
        return fail([str(exc)])

    import uvicorn

    from app.server import create_app

    app = create_app(settings, credentials)
    uvicorn.run(
        app,
        host=settings.proxy.host,
        port=settings.proxy.port,
        log_config=None,
        log_level=settings.proxy.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_start(_: argparse.Namespace) -> int:
    settings = _load()
    if isinstance(settings, int):
        return settings
    from app.stack.start import StartError, start

    try:
        return start(settings)
    except (StartError, CredentialsError) as exc:
        return fail([str(exc)])


def cmd_health(_: argparse.Namespace) -> int:
    settings = _load()
    if isinstance(settings, int):
        return settings
    from app.stack.health import check_components
    from app.stack.start import StartError, resolve_grafana

    try:
        grafana_enabled = resolve_grafana(settings) is not None
    except StartError as exc:
        return fail([str(exc)])
    results = check_components(settings, grafana_enabled)
    for result in results:
        print(f"{result.name}: {'ok' if result.ok else 'FAIL'} ({result.detail})")
    return 0 if all(result.ok for result in results) else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Internal: the programs supervisord starts. Not meant to be typed by users."""
    if args.component == "fatal-listener":
        from app.stack import fatal_listener
        from app.stack.layout import DataLayout

        settings = _load()
        if isinstance(settings, int):
            return settings
        fatal_listener.run(DataLayout(settings.data_dir).fatal_marker)
        return 0
    settings = _load()
    if isinstance(settings, int):
        return settings
    import os

    from app.stack import components
    from app.stack.binaries import find_grafana, find_prometheus
    from app.stack.layout import DataLayout

    layout = DataLayout(settings.data_dir)
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


def cmd_ctl(args: argparse.Namespace) -> int:
    """supervisorctl for the running stack (e.g. `aqua-metrics ctl status`), socket found for you."""
    settings = _load()
    if isinstance(settings, int):
        return settings
    import os

    from app.stack import files
    from app.stack.layout import DataLayout

    socket_path = DataLayout(settings.data_dir.resolve()).supervisor_socket
    env = {**os.environ, "AQUA_SUPERVISOR_SOCKET": str(socket_path)}
    argv = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(files.supervisord_conf())]
    os.execve(sys.executable, [*argv, *args.arguments], env)  # noqa: S606
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aqua-metrics",
        description="Monitor vLLM deployments on OCI AI Quick Actions (signing proxy, Prometheus, Grafana).",
    )
    parser.add_argument("--version", action="version", version=f"aqua-metrics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
        "check": ("validate the configuration and print what it resolves to", cmd_check),
        "proxy": ("serve the signing proxy", cmd_proxy),
        "start": ("run the whole stack (proxy, Prometheus, Grafana) under supervisord", cmd_start),
        "health": ("check that every component of a running stack answers", cmd_health),
    }
    for name, (help_text, handler) in commands.items():
        sub.add_parser(name, help=help_text).set_defaults(handler=handler)
    ctl = sub.add_parser("ctl", help="supervisorctl for the running stack, e.g. `ctl status`")
    ctl.add_argument("arguments", nargs=argparse.REMAINDER)
    ctl.set_defaults(handler=cmd_ctl)
    run = sub.add_parser("run", help="internal: a program of the stack, as supervisord starts it")
    run.add_argument("component", choices=["prometheus", "grafana", "fatal-listener"])
    run.set_defaults(handler=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
