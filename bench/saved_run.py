"""The command line and the saved results of a standalone benchmark, with the commit measured."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.common import ROOT


def git_commit() -> str:
    """The short hash of HEAD, `+dirty` when the worktree has changes, or `unknown`."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if not head:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head}+dirty" if dirty else head


def bench_main(
    argv: list[str] | None,
    *,
    description: str,
    name: str,
    quick_help: str,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse `--quick`, `--output` (and `options`), run, and save `<stamp>-<name>-<mode>.json`
    with its markdown summary; the results carry mode, start time, commit and machine."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--output", type=Path, default=common.RESULTS_DIR)
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    stamp = common.utc_stamp()
    results = {
        "mode": "quick" if args.quick else "full",
        "started_at": stamp,
        "commit": git_commit(),
        "machine": common.machine(),
        **run(args),
    }
    path = args.output / f"{stamp}-{name}-{results['mode']}.json"
    common.save_results(path, results, markdown(results))
    return 0
