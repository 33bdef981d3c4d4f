"""The top-level config files travel with the package: `start` works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys

from app.stack import files


def test_checkout_finds_the_top_level_files(repo_root):
    assert files.stack_files_dir() in {repo_root, repo_root / "app" / "stack_files"}
    assert files.supervisord_conf().is_file()
    assert files.home_dashboard().is_file()
    assert sorted(files.rules_dir().glob("*.yml"))


def test_installed_wheel_finds_its_packaged_copies_from_any_directory(repo_root, tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(repo_root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = dist.glob("aqua_metrics-*.whl")
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "from app.stack import files; import app; "
        "print(app.__file__); print(files.stack_files_dir()); print(files.home_dashboard().is_file())"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    module_file, stack_dir, dashboard_ok = result.stdout.split()
    assert module_file.startswith(str(target))
    assert stack_dir == str(target / "app" / "stack_files")
    assert dashboard_ok == "True"
    for name in (
        "supervisord.conf",
        "prometheus.yml",
        "rules",
        "grafana/provisioning/datasources/prometheus.yaml",
    ):
        assert (target / "app" / "stack_files" / name).exists(), name
    assert not (target / "app" / "stack_files" / "grafana" / "build_dashboards.py").exists()
