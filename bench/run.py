"""Run every aqua-metrics benchmark; write raw JSON to bench/results/ and print a summary.

    .venv/bin/python bench/run.py            full run (~11 min)
    .venv/bin/python bench/run.py --quick    smoke run (~2 min)

`--only proxy` (benchmarks 1, 2 and the proxy's memory), `--only stack` (3, 4, 5) or
`--only discovery` (a 1,000-deployment listing and the fleet's cost) runs a part;
`--pythonpath DIR` puts DIR before the repository for the proxy and the stack, to measure a
patched copy of app/ with the same harness. All traffic stays on 127.0.0.1, every loop is bounded,
and every process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, discovery_bench, proxy_bench, stack_bench
from bench.fixtures import Workspace
from bench.payloads import build_all
from bench.report import markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter windows")
    parser.add_argument("--only", choices=["proxy", "stack", "discovery"], action="append")
    parser.add_argument("--pythonpath", action="append", default=[], metavar="DIR")
    parser.add_argument("--output", type=Path, default=common.RESULTS_DIR)
    args = parser.parse_args(argv)
    common.EXTRA_PYTHONPATH[:] = [str(Path(p).resolve()) for p in args.pythonpath]
    parts = args.only or ["proxy", "stack", "discovery"]

    started = time.monotonic()
    stamp = common.utc_stamp()
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started_at": stamp,
        "pythonpath": common.EXTRA_PYTHONPATH,
        "machine": common.machine(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    payloads = build_all()
    results["payloads"] = {
        p.name: {"bytes": len(p.body), "gzip_bytes": len(p.gzipped), "series": p.series}
        for p in payloads.values()
    }
    with Workspace(payloads) as workspace:
        for part in parts:
            section_started = time.monotonic()
            print(f"bench: running {part} benchmarks ...", file=sys.stderr, flush=True)
            if part == "discovery":
                results[part] = discovery_bench.run(args.quick)
            else:
                module = proxy_bench if part == "proxy" else stack_bench
                results[part] = module.run(workspace, args.quick)
            results[part]["duration_s"] = time.monotonic() - section_started
    results["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_s"] = time.monotonic() - started

    common.save_results(args.output / f"{stamp}-{results['mode']}.json", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
