"""The commit the benchmarks measured, recorded beside their figures."""

from __future__ import annotations

import subprocess

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
