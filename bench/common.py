"""Shared helpers: paths, machine facts, per-process CPU and memory from /proc, statistics."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testkit.cavage import KeyRegistry
    from testkit.oci_credentials import ApiKeyCredentials

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROMETHEUS_DIR = ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin"
RESULTS_DIR = ROOT / "bench" / "results"
# Put before the repository on the proxy's and stack's PYTHONPATH (`run.py --pythonpath`), to
# measure a patched copy of app/ (or extra packages) against the same harness.
EXTRA_PYTHONPATH: list[str] = []


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for benchmark subprocesses: repo importable, Prometheus on PATH."""
    env = {
        "PATH": f"{PROMETHEUS_DIR}:{Path(PYTHON).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": ":".join([*EXTRA_PYTHONPATH, str(ROOT)]),
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    return env


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads, living and exited), in clock
    ticks (10 ms): for long windows."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" field 0 is state (3rd overall); utime/stime are the 14th/15th overall.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds_ns(pid: int) -> float:
    """On-CPU time of a process' living threads, to the nanosecond (schedstat's sum_exec_runtime,
    the clock `time.process_time()` reads): for short windows in which no thread exits."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident set size of a process (`VmRSS`), or its peak with field `VmHWM`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def process_name(pid: int) -> str:
    """A short human name: the executable, or `python -m <module> <sub>` condensed."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    if "-m" in words:
        rest = words[words.index("-m") + 1 :]
        return " ".join(rest[:3])
    return Path(words[0]).name


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (by parent pid), living at the time of the call."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_memory(root: int) -> dict[str, object]:
    """RSS and PSS of every process in the tree of `root`, and their sums."""
    rows = []
    for pid in process_tree(root):
        try:
            rows.append(
                {
                    "pid": pid,
                    "name": process_name(pid),
                    "rss_mib": rss_bytes(pid) / 2**20,
                    "pss_mib": pss_bytes(pid) / 2**20,
                }
            )
        except OSError:
            continue
    return {
        "processes": rows,
        "rss_mib": sum(float(r["rss_mib"]) for r in rows),  # type: ignore[arg-type]
        "pss_mib": sum(float(r["pss_mib"]) for r in rows),  # type: ignore[arg-type]
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, object]:
    """Where the figures were measured."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    prometheus = PROMETHEUS_DIR / "prometheus"
    prometheus_version = "absent"
    if prometheus.exists():
        out = subprocess.run(
            [str(prometheus), "--version"], capture_output=True, text=True, check=False
        )
        prometheus_version = (out.stdout or out.stderr).splitlines()[0].split("version", 1)[-1]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "prometheus": prometheus_version.strip(),
        "packages": {
            name: _version(name)
            for name in (
                "aqua-metrics",
                "fastapi",
                "starlette",
                "uvicorn",
                "h11",
                "httpx",
                "httpcore",
                "anyio",
                "oci",
                "cryptography",
                "prometheus-client",
                "supervisor",
                "uvloop",
                "httptools",
            )
        },
    }


def api_key_setup(prefix: str) -> tuple[ApiKeyCredentials, KeyRegistry, Any]:
    """A fresh API key profile in a new /tmp directory named `prefix...`, the `KeyRegistry` the
    signature-checking stand-ins verify against (its key registered) and an SDK signer using it."""
    import tempfile

    import oci

    from testkit.cavage import KeyRegistry
    from testkit.oci_credentials import make_api_key_profile

    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    credentials = make_api_key_profile(workdir / "oci")
    registry = KeyRegistry()
    credentials.register_with(registry)
    signer = oci.signer.Signer.from_config(oci.config.from_file(str(credentials.config_path)))
    return credentials, registry, signer


def utc_stamp() -> str:
    """The start of a run in UTC, as it names the result files: `20260101T120000Z`."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def save_results(path: Path, results: object, summary: str) -> None:
    """Write the raw `results` to `path` (JSON) and `summary` beside it (`.md`, ending in a
    newline), print the summary and say on stderr where the raw results are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    path.with_suffix(".md").write_text(summary if summary.endswith("\n") else summary + "\n")
    print(summary)
    print(f"raw results: {path}", file=sys.stderr)


def quick_json_main(
    description: str,
    quick_help: str,
    run: Callable[[bool], dict[str, Any]],
    argv: list[str] | None = None,
) -> int:
    """The command line of a benchmark that takes only `--quick` and prints `run(quick)` as
    JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick), indent=2))
    return 0
