"""Cuts from the image's virtual environment what aqua-metrics never loads. Runs in the builder stage.

    python slim.py deps VENV     after the dependencies are installed (pip still present)
    python slim.py final VENV    after the project is installed: drop pip/setuptools, compile

What goes, and why it is safe:
* The `oci` SDK's service packages (~180 of them, ~440 MB with bytecode). The proxy builds signers,
  lists model deployments (`data_science`, paged by `oci.pagination`) and reads OCI Monitoring
  (`monitoring`, for the collector); `import oci` itself loads `dns`, `object_storage` (through
  `oci.pagination`) and `work_requests` (through `oci.waiter`), so those stay with the core folders
  in OCI_KEEP. Every
  top-level module file of the SDK stays. The list was found by recording the modules a proxy
  loads in every auth mode (docs/image.md); `tests/test_dockerfile.py` checks that every `oci.X`
  the code imports is kept, and the builder's smoke step (smoke.py) and the built-image tests
  exercise every auth mode, so a module cut by mistake fails the build, not a user.
* aiohttp and its helper packages (only `oci.async_base_client` imports aiohttp; we never import
  it) and pyOpenSSL (imported by nothing we load).
* Test suites shipped inside dependencies, and debug symbols of their compiled extensions.
* pip and setuptools in the final step: nothing installs packages at run time.

Every step prints what it removed and how many bytes that saved. A keep-listed folder that does not
exist (the SDK changed its layout) stops the build.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

OCI_KEEP = frozenset(
    {
        "_vendor",
        "auth",
        "circuit_breaker",
        "pagination",
        "retry",
        "data_science",  # fleet discovery: DataScienceClient.list_model_deployments
        "monitoring",  # the OCI Monitoring collector (app.monitoring): MonitoringClient
        "dns",
        "object_storage",
        "work_requests",
        # Alert notifications: NotificationDataPlaneClient.publish_message (app/alerts).
        "ons",
    }
)
UNUSED_DISTRIBUTIONS = (
    "aiohttp",
    "aiohappyeyeballs",
    "aiosignal",
    "attrs",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    "pyOpenSSL",
)
INSTALLER_DISTRIBUTIONS = ("pip", "setuptools")
TEST_FOLDERS = ("tests", "test")


def fail(message: str) -> None:
    print(f"slim: FAIL: {message}", file=sys.stderr)
    raise SystemExit(1)


def size_of(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def report(what: str, saved: int) -> None:
    print(f"slim: {what}: {saved / 1e6:.1f} MB", flush=True)


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        fail(f"expected one site-packages under {venv}/lib, found {found}")
    return found[0]


def rewrite_record(dist_info: Path, site: Path) -> None:
    """Drop RECORD rows of files that no longer exist, so the metadata matches the tree."""
    record = dist_info / "RECORD"
    rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
    kept = [row for row in rows if row and ((site / row[0]).exists() or row[0].endswith("RECORD"))]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    record.write_text(buffer.getvalue(), encoding="utf-8")


def prune_oci(site: Path) -> None:
    root = site / "oci"
    if not (root / "__init__.py").is_file():
        fail(f"no oci package in {site}")
    missing = sorted(name for name in OCI_KEEP if not (root / name / "__init__.py").is_file())
    if missing:
        fail(f"oci has no {missing}: the SDK changed its layout; update OCI_KEEP")
    saved = 0
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name not in OCI_KEEP:
            saved += size_of(entry)
            shutil.rmtree(entry)
            removed.append(entry.name)
    [dist_info] = site.glob("oci-*.dist-info")
    rewrite_record(dist_info, site)
    report(f"oci: removed {len(removed)} service packages, kept {sorted(OCI_KEEP)}", saved)


def pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], check=True)


def installed(site: Path, name: str) -> Path | None:
    wanted = name.lower().replace("-", "_")
    for dist_info in site.glob("*.dist-info"):
        project = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if project.lower().replace("-", "_") == wanted:
            return dist_info
    return None


def dist_size(site: Path, dist_info: Path) -> int:
    total = 0
    for row in csv.reader(io.StringIO((dist_info / "RECORD").read_text(encoding="utf-8"))):
        if row and (site / row[0]).is_file():
            total += (site / row[0]).lstat().st_size
    return total


def uninstall(venv: Path, site: Path, names: tuple[str, ...], why: str) -> None:
    present = [(name, installed(site, name)) for name in names]
    found = [(name, info) for name, info in present if info is not None]
    absent = [name for name, info in present if info is None]
    if absent:
        print(f"slim: not installed, nothing to remove: {', '.join(absent)}")
    if not found:
        return
    saved = sum(dist_size(site, info) for _, info in found)
    pip(venv, "uninstall", "--yes", "--quiet", *(name for name, _ in found))
    left = [name for name, _ in found if installed(site, name) is not None]
    if left:
        fail(f"still installed after pip uninstall: {left}")
    report(f"{why}: uninstalled {', '.join(name for name, _ in found)}", saved)


def remove_test_suites(site: Path) -> None:
    saved = 0
    removed = []
    for package in sorted(site.iterdir()):
        if not package.is_dir() or package.name.endswith(".dist-info"):
            continue
        for name in TEST_FOLDERS:
            folder = package / name
            if folder.is_dir():
                saved += size_of(folder)
                shutil.rmtree(folder)
                removed.append(f"{package.name}/{name}")
    report(f"test suites of dependencies: {', '.join(removed) or 'none'}", saved)


def strip_extensions(site: Path) -> None:
    strip = shutil.which("strip")
    if strip is None:
        fail("strip (binutils) is not installed in the builder stage")
    saved = 0
    for library in sorted(site.rglob("*.so")):
        before = library.stat().st_size
        subprocess.run([strip, "--strip-debug", str(library)], check=True)
        saved += before - library.stat().st_size
    for dist_info in site.glob("*.dist-info"):
        fix_hashes(dist_info, site)
    report("debug symbols of compiled extensions", saved)


def fix_hashes(dist_info: Path, site: Path) -> None:
    """Keep RECORD hashes true for the files strip rewrote."""
    record = dist_info / "RECORD"
    if not record.is_file():
        return
    rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
    changed = False
    for row in rows:
        if len(row) == 3 and row[0].endswith(".so") and (site / row[0]).is_file():
            data = (site / row[0]).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            row[1:] = [f"sha256={digest}", str(len(data))]
            changed = True
    if changed:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        record.write_text(buffer.getvalue(), encoding="utf-8")


def compile_all(venv: Path, site: Path) -> None:
    """Bytecode for what is kept, checked against nothing but its own presence (the image is
    read-only to the user, so a source never changes under its .pyc)."""
    before = size_of(site)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(site),
        ],
        check=True,
    )
    print(f"slim: bytecode for the kept packages: +{(size_of(site) - before) / 1e6:.1f} MB")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"deps", "final"}:
        print(__doc__, file=sys.stderr)
        return 2
    venv = Path(argv[2])
    site = site_packages(venv)
    start = size_of(venv)
    if argv[1] == "deps":
        prune_oci(site)
        uninstall(venv, site, UNUSED_DISTRIBUTIONS, "not imported by aqua-metrics")
        remove_test_suites(site)
        strip_extensions(site)
    else:
        uninstall(venv, site, INSTALLER_DISTRIBUTIONS, "installers, unused at run time")
        for leftover in ("pip", "pip3", f"pip3.{sys.version_info.minor}"):
            (venv / "bin" / leftover).unlink(missing_ok=True)
        compile_all(venv, site)
    print(f"slim: {venv}: {start / 1e6:.1f} MB -> {size_of(venv) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
