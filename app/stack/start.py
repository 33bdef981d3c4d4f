"""`aqua-metrics start`: validate, prepare DATA_DIR, run supervisord, and exit honestly.

Everything that can be wrong with the configuration is found before supervisord starts, so a bad
setting exits non-zero within seconds with one line and leaves nothing running. supervisord then
runs as our child (it dies with us); SIGTERM/SIGINT are passed on, and a program that went FATAL
turns into exit code 1 (supervisord itself would exit 0).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from app.alerts.amtool import check_config
from app.errors import ConfigError
from app.listening import check_can_listen
from app.settings import Settings
from app.stack import files
from app.stack.binaries import (
    GrafanaInstall,
    find_alertmanager,
    find_amtool,
    find_grafana,
    find_prometheus,
)
from app.stack.credentials_check import check_credentials
from app.stack.health import check_components
from app.stack.layout import DataLayout
from app.stack.leftovers import running_supervisord, stop_leftovers, supervisord_pid_file
from app.stack.parent_death import die_with_parent
from app.stack.runtime import ensure_secret, prepare_directories, write_runtime_files

EXIT_FATAL_PROGRAM = 1
# Debian's Alertmanager build does not embed its templates; it exits at start without this file.
DEBIAN_TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")
READY_WAIT_SECONDS = 120


class StartError(ConfigError):
    """A problem found before anything runs; one line naming the setting."""


@dataclass(frozen=True)
class StackPlan:
    settings: Settings
    layout: DataLayout
    prometheus: Path
    grafana: GrafanaInstall | None
    alertmanager: Path | None = None
    amtool: Path | None = None


def resolve_grafana(settings: Settings) -> GrafanaInstall | None:
    """Grafana to run, per GRAFANA_ENABLED (auto runs it when its binary is present)."""
    if settings.grafana.enabled == "false":
        return None
    install = find_grafana(settings)
    if install is None and settings.grafana.enabled == "true":
        raise StartError(
            "GRAFANA_ENABLED: true, but no grafana binary was found "
            "(set GRAFANA_BIN or GRAFANA_HOME, or GRAFANA_ENABLED=auto)"
        )
    return install


def _check_writable(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartError(f"DATA_DIR: cannot create {data_dir} ({exc.strerror})") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StartError(f"DATA_DIR: {data_dir} is not writable by uid {os.getuid()}")


def _clear_a_dead_stack(layout: DataLayout) -> None:
    """Refuse when a stack runs on this DATA_DIR; stop what a crashed one left, in one line."""
    running = running_supervisord(layout)
    if running is not None:
        raise StartError(
            f"DATA_DIR: a stack is already running on {layout.data_dir} (supervisord pid "
            f"{running}); stop it first (aqua-metrics ctl shutdown)"
        )
    stale_files = [
        what
        for what, path in (
            ("pid file", supervisord_pid_file(layout)),
            ("supervisord socket", layout.supervisor_socket),
        )
        if path.exists() or path.is_symlink()
    ]
    stopped = stop_leftovers(layout)
    if stopped:
        print(
            f"aqua-metrics: stopped {len(stopped)} process(es) left running by a stack on "
            f"{layout.data_dir} that did not shut down (pids {', '.join(map(str, stopped))})",
            flush=True,
        )
    elif stale_files:
        print(
            f"aqua-metrics: removed the stale {' and '.join(stale_files)} of a stack on "
            f"{layout.data_dir} that did not shut down",
            flush=True,
        )


def _required_program(
    found: Path | None, setting: str, configured: str | None, executable: str, install: str
) -> Path:
    """`found`, or StartError naming `setting` when `executable` is neither where that setting
    points (`configured`) nor on PATH, saying what to `install`."""
    if found is None:
        raise StartError(
            f"{setting}: no {executable} executable at {configured or 'PATH'}; "
            f"install {install} (make deps) or set {setting}"
        )
    return found


def plan_stack(settings: Settings) -> StackPlan:
    """Every check that needs no running process. Raises StartError or CredentialsError."""
    check_credentials(settings)
    prometheus = _required_program(
        find_prometheus(settings),
        "PROMETHEUS_BIN",
        settings.prometheus.binary,
        "prometheus",
        "Prometheus 3",
    )
    alertmanager, amtool = _resolve_alertmanager(settings)
    grafana = resolve_grafana(settings)
    if (
        grafana is not None
        and settings.central.agent
        and settings.central.grafana_datasource is None
    ):
        raise StartError(
            "PROMETHEUS_MODE: agent mode keeps no queryable data, so Grafana needs the central "
            "store: set GRAFANA_DATASOURCE_URL (or GRAFANA_ENABLED=false)"
        )
    _check_writable(settings.data_dir)
    _clear_a_dead_stack(DataLayout(settings.data_dir.resolve()))
    check_can_listen("PROXY_PORT", settings.proxy.host, settings.proxy.port, "PROXY_HOST")
    check_can_listen("PROMETHEUS_PORT", settings.prometheus.listen_host, settings.prometheus.port)
    check_can_listen("ALERTMANAGER_PORT", "127.0.0.1", settings.alerting.port)
    if grafana is not None:
        check_can_listen("GRAFANA_PORT", "0.0.0.0", settings.grafana.port)
    return StackPlan(
        settings=settings,
        layout=DataLayout(settings.data_dir.resolve()),
        prometheus=prometheus,
        grafana=grafana,
        alertmanager=alertmanager,
        amtool=amtool,
    )


def _resolve_alertmanager(settings: Settings) -> tuple[Path, Path]:
    """Alertmanager and the amtool that checks its configuration; both are required."""
    alertmanager = _required_program(
        find_alertmanager(settings),
        "ALERTMANAGER_BIN",
        settings.alerting.binary,
        "alertmanager",
        "Alertmanager",
    )
    if alertmanager.name == "prometheus-alertmanager" and not DEBIAN_TEMPLATES.is_file():
        raise StartError(
            f"ALERTMANAGER_BIN: Debian's {alertmanager} reads its templates from "
            f"{DEBIAN_TEMPLATES.parent}, which is missing; install the prometheus-alertmanager "
            "package or run scripts/install-alertmanager.sh as root"
        )
    amtool = find_amtool(alertmanager)
    if amtool is None:
        raise StartError(
            f"ALERTMANAGER_BIN: no amtool beside {alertmanager} or on PATH; "
            "it checks the Alertmanager configuration before the stack starts"
        )
    return alertmanager, amtool


def _check_alertmanager_config(plan: StackPlan) -> None:
    """Alertmanager's own check of the written configuration; StartError when it refuses."""
    if plan.amtool is None:
        return
    alerting = plan.settings.alerting
    problem = check_config(plan.amtool, plan.layout.alertmanager_config, alerting.secrets())
    if problem is None:
        return
    setting = "ALERTMANAGER_CONFIG_FILE" if alerting.config_file is not None else "ALERTMANAGER"
    raise StartError(f"{setting}: amtool check-config refused the configuration: {problem}")


def _announce_receivers(settings: Settings) -> None:
    """Say once, at start, when alerts reach no one."""
    alerting = settings.alerting
    if alerting.config_file is None and not alerting.receivers:
        print(
            "aqua-metrics: no alert receiver configured; alerts are visible in Grafana and "
            "Alertmanager but not delivered anywhere (see README: Alerts)",
            flush=True,
        )


def prepare(plan: StackPlan) -> None:
    """Write runtime files; generate Grafana's admin password on first start."""
    layout = plan.layout
    prepare_directories(layout)
    write_runtime_files(plan.settings, layout, grafana_enabled=plan.grafana is not None)
    _check_alertmanager_config(plan)
    if plan.grafana is not None and plan.settings.grafana.admin_password is None:
        password, created = ensure_secret(layout.grafana_admin_password)
        if created and not (layout.grafana_data / "grafana.db").exists():
            # Shown once, on the start that creates it, so a user without shell access can sign in.
            print(
                f"aqua-metrics: Grafana admin password (generated, stored in "
                f"{layout.grafana_admin_password}): {password}",
                flush=True,
            )


def supervisor_environment(plan: StackPlan, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "DATA_DIR": str(plan.layout.data_dir),
            "PROMETHEUS_BIN": str(plan.prometheus),
            "ALERTMANAGER_BIN": str(plan.alertmanager or ""),
            "AQUA_METRICS_BIN": f"{shlex.quote(sys.executable)} -m app",
            "AQUA_RUNTIME_DIR": str(plan.layout.runtime),
            "AQUA_SUPERVISOR_SOCKET": str(plan.layout.supervisor_socket),
            "AQUA_SUPERVISOR_LOGLEVEL": "warn",
            "AQUA_GRAFANA_AUTOSTART": "true" if plan.grafana is not None else "false",
        }
    )
    if plan.grafana is not None:
        env["GRAFANA_BIN"] = str(plan.grafana.binary)
        env["GRAFANA_HOME"] = str(plan.grafana.home)
    return env


def _supervisord_preexec() -> None:
    """In supervisord's process before exec: die with us, and leave Ctrl-C to us until it has its
    own handlers (SIG_IGN survives exec; supervisord installs a SIGINT handler when it is up).
    A Ctrl-C reaches the whole process group; we pass it on as SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def _announce_ready(plan: StackPlan, child: subprocess.Popen[bytes], stop: threading.Event) -> None:
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while not stop.is_set() and child.poll() is None and time.monotonic() < deadline:
        if all(result.ok for result in check_components(plan.settings, plan.grafana is not None)):
            where = (
                f"Grafana at http://localhost:{plan.settings.grafana.port}"
                if plan.grafana is not None
                else f"Prometheus at http://127.0.0.1:{plan.settings.prometheus.port}"
            )
            print(f"aqua-metrics: ready; {where}", flush=True)
            return
        stop.wait(1.0)


class _Signals:
    """Installed before anything starts: a stop request during start-up is honoured cleanly."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.child: subprocess.Popen[bytes] | None = None
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)


def _relay(source: int, target: BinaryIO) -> None:
    """Copy one of supervisord's output pipes to our own stdout/stderr until it closes."""
    with os.fdopen(source, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            with contextlib.suppress(OSError, ValueError):
                target.write(chunk)
                target.flush()


def run_supervisord(plan: StackPlan, signals: _Signals) -> int:
    """Run supervisord in the foreground until it exits; map a FATAL program to exit 1."""
    if signals.stop_requested:
        return 0
    env = supervisor_environment(plan, os.environ)
    argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(files.supervisord_conf())]
    # supervisord reopens /dev/stdout and /dev/stderr for its programs' logs. Our own stdio may be
    # a pipe the runtime made as root (buildah, rootless runtimes that cannot chown it: EACCES),
    # or a socket (systemd: ENXIO): give supervisord pipes of our own and relay them.
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        child = subprocess.Popen(
            argv, env=env, preexec_fn=_supervisord_preexec, stdout=out_write, stderr=err_write
        )
    finally:
        os.close(out_write)
        os.close(err_write)
    relays = [
        threading.Thread(target=_relay, args=(out_read, sys.stdout.buffer), daemon=True),
        threading.Thread(target=_relay, args=(err_read, sys.stderr.buffer), daemon=True),
    ]
    for relay in relays:
        relay.start()
    signals.child = child
    if signals.stop_requested:  # arrived between the check above and Popen
        child.send_signal(signal.SIGTERM)
    stop = threading.Event()
    threading.Thread(target=_announce_ready, args=(plan, child, stop), daemon=True).start()
    code = child.wait()
    stop.set()
    for relay in relays:
        relay.join(timeout=5)  # the last lines supervisord and its programs wrote
    marker = plan.layout.fatal_marker
    if marker.exists():
        program = marker.read_text(encoding="utf-8").strip() or "a program"
        print(
            f"aqua-metrics: {program} kept failing (FATAL); stopped the stack, exit code 1",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FATAL_PROGRAM
    if signals.stop_requested:
        return 0  # we asked it to stop; however it ended (even killed while importing), it did
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's 128+N


def start(settings: Settings) -> int:
    """The `start` command body, after settings loaded. Raises StartError/CredentialsError."""
    signals = _Signals()
    try:
        plan = plan_stack(settings)  # runs the credentials check
        if signals.stop_requested:
            return 0
        if plan.grafana is None and settings.grafana.enabled == "auto":
            print(
                "aqua-metrics: Grafana not found (GRAFANA_ENABLED=auto); running the proxy and "
                "Prometheus only",
                flush=True,
            )
        prepare(plan)  # runs amtool check-config
    except ConfigError:
        # A check's child (the credentials check, amtool) may have been stopped with us: its
        # failure then says nothing about the configuration.
        if signals.stop_requested:
            return 0
        raise
    _announce_receivers(settings)
    return run_supervisord(plan, signals)
