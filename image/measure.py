"""Size of each part of a built image's file tree: `python3 image/measure.py ROOTFS [BASE_ROOTFS]`.

ROOTFS is the mounted root of the image (`buildah mount`); BASE_ROOTFS, when given, the mounted root
of its base, so the table says what the Dockerfile added. Sizes are bytes on disk of regular files
(apparent sizes, hard links counted once), the way `du --apparent-size` counts them. Prints a
Markdown table, and one `measure: name=bytes` line per part for scripts and tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

VENV = "opt/aqua-metrics"


def tree_size(root: Path, seen: set[tuple[int, int]] | None = None) -> int:
    seen = set() if seen is None else seen
    total = 0
    if root.is_symlink() or not root.exists():
        return 0
    if root.is_file():
        stat = root.lstat()
        return stat.st_size
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            stat = path.lstat()
            if not path.is_file() or path.is_symlink():
                continue
            key = (stat.st_dev, stat.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += stat.st_size
    return total


def matching(root: Path, pattern: str) -> Iterable[Path]:
    return sorted(root.glob(pattern))


def site_packages(rootfs: Path) -> Path:
    found = list((rootfs / VENV / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"measure: no single site-packages under {rootfs / VENV}")
    return found[0]


def pycache_size(root: Path) -> int:
    return sum(tree_size(folder) for folder in root.rglob("__pycache__"))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    rootfs = Path(argv[1])
    base = Path(argv[2]) if len(argv) == 3 else None
    site = site_packages(rootfs)
    parts: list[tuple[str, int, str]] = []
    total = tree_size(rootfs)
    parts.append(("image (whole file tree)", total, "everything in the final image"))
    if base is not None:
        base_size = tree_size(base)
        parts.append(("base image", base_size, "the Python base (stand-in here)"))
        parts.append(("added by the Dockerfile", total - base_size, "image minus base"))
    venv = tree_size(rootfs / VENV)
    parts.append(("Python environment", venv, f"/{VENV}"))
    oci = tree_size(site / "oci")
    parts.append(("  oci SDK", oci, "site-packages/oci"))
    dists = {}
    for entry in site.iterdir():
        if entry.name in {"oci", "__pycache__"} or entry.name.endswith((".dist-info", ".pth")):
            continue
        name = entry.name.removesuffix(".py")
        dists[name] = dists.get(name, 0) + tree_size(entry)
    for name in ("pip", "setuptools", "_distutils_hack", "pkg_resources"):
        if name in dists:
            parts.append((f"  {name}", dists.pop(name), "installer tooling"))
    top = sorted(dists.items(), key=lambda item: -item[1])
    for name, size in top[:8]:
        parts.append((f"  {name}", size, "dependency"))
    rest = sum(size for _, size in top[8:])
    parts.append(("  other dependencies", rest, f"{len(top) - 8} more top-level packages"))
    parts.append(("  bytecode (__pycache__)", pycache_size(rootfs / VENV), "all .pyc in the env"))
    for label, path in (
        ("Prometheus", "usr/local/bin/prometheus"),
        ("Grafana home", "usr/share/grafana"),
        ("tini", "usr/bin/tini"),
    ):
        parts.append((label, tree_size(rootfs / path), f"/{path}"))
    musl = sum(tree_size(p) for p in matching(rootfs, "usr/lib/*-linux-musl"))
    parts.append(("musl", musl, "Grafana's loader"))
    print("| part | MB | what |")
    print("| --- | ---: | --- |")
    for label, size, what in parts:
        print(f"| {label} | {size / 1e6:.1f} | {what} |")
    for label, size, _ in parts:
        key = label.strip().split(" (")[0].replace(" ", "_").lower()
        print(f"measure: {key}={size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
