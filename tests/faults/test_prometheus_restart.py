"""Prometheus restarted under load, through the real stack: no sample stored before is lost.

`aqua-metrics start` runs supervisord, the proxy and Prometheus (scraping every second). While a load
loop scrapes the proxy, Prometheus is killed with SIGKILL (as the OOM killer would) and, later,
restarted with `aqua-metrics ctl restart prometheus`. Every raw sample Prometheus returned just
before each restart must be returned, identical, afterwards; scraping must resume; and the load on
the proxy must never fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from testkit.stack import Stack
from testkit.waiting import wait_until

pytestmark = pytest.mark.stack

SERIES = (
    'up{job="vllm"}',
    'vllm:num_requests_running{deployment="demo-chat"}',
    'aqua_proxy_scrape_duration_seconds_count{deployment="demo-chat"}',
    'up{job="aqua-proxy"}',
)
WINDOW = "15m"


@pytest.fixture(scope="module")
def stack():
    # One demo deployment: SERIES then names one series each (two for its 2 replicas' gauge).
    running = Stack.create(SCRAPE_INTERVAL="1s", SCRAPE_TIMEOUT="1s", DEMO_DEPLOYMENTS="1").start()
    yield running
    running.cleanup()


class LoadLoop:
    """Scrapes the proxy from a few threads until stopped; records every status."""

    def __init__(self, url: str, workers: int = 3) -> None:
        self.url = url
        self.statuses: list[int | str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                    self.statuses.append(response.status)
            except OSError as exc:
                self.statuses.append(repr(exc))
            self._stop.wait(0.02)

    def __enter__(self) -> LoadLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def raw_samples(stack: Stack) -> dict[tuple, set[tuple[float, str]]]:
    """Every stored (timestamp, value) of SERIES within WINDOW, by (expression, series)."""
    samples: dict[tuple, set[tuple[float, str]]] = {}
    for expr in SERIES:
        for series in stack.query(f"{expr}[{WINDOW}]"):
            key = (expr, *sorted(series["metric"].items()))
            samples[key] = {(float(ts), value) for ts, value in series["values"]}
    return samples


def _wait_for_new_prometheus(stack: Stack, old_pid: int, timeout: float = 60) -> int:
    def new_pid_answering() -> int | None:
        try:
            pid = stack.supervisor_pid("prometheus")
            if pid != old_pid:
                stack.query("up")  # answering queries again
                return pid
        except (AssertionError, OSError):
            pass
        return None

    return wait_until(
        new_pid_answering,
        timeout,
        0.3,
        lambda: f"prometheus did not come back:\n{stack.logs()[-3000:]}",
    )


def _restart_and_compare(stack: Stack, restart) -> None:
    stack.wait_for('count_over_time(up{job="vllm"}[15m]) >= 5', timeout=60)
    with LoadLoop(f"{stack.proxy_url}/targets/demo-chat/metrics") as load:
        wait_until(lambda: len(load.statuses) >= 10, 30, message="the load loop is not running")
        old_pid = stack.supervisor_pid("prometheus")
        before = raw_samples(stack)  # the last look before the restart
        restart(old_pid)
        _wait_for_new_prometheus(stack, old_pid)
        newest_before = max(ts for values in before.values() for ts, _ in values)
        # Scraping resumed: samples newer than anything seen before the restart.
        stack.wait_for(f"timestamp(up{{job='vllm'}}) > {newest_before + 1}", timeout=60)
        after = raw_samples(stack)
        # The proxy keeps answering after the restart too, not only until it.
        seen = len(load.statuses)
        wait_until(lambda: len(load.statuses) >= seen + 10, 30, message="the load loop stalled")
    assert {key[0] for key in before} == set(SERIES), sorted(before)
    for key, values in before.items():
        assert len(values) >= 3, (key, values)
        lost = values - after.get(key, set())
        assert not lost, (
            f"{len(lost)} of {len(values)} samples of {dict(key[1:])} lost: {sorted(lost)[:5]}"
        )
    assert load.statuses, "the load loop never ran"
    failed = [status for status in load.statuses if status != 200]
    assert not failed, f"{len(failed)}/{len(load.statuses)} proxy scrapes failed: {failed[:5]}"


def test_kill_9_of_prometheus_under_load_loses_no_stored_sample(stack):
    _restart_and_compare(stack, lambda pid: os.kill(pid, signal.SIGKILL))


def test_ctl_restart_of_prometheus_under_load_loses_no_stored_sample(stack):
    def ctl_restart(_pid: int) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "app", "ctl", "restart", "prometheus"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    _restart_and_compare(stack, ctl_restart)
