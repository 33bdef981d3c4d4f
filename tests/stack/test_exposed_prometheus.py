"""PROMETHEUS_EXPOSE: Prometheus on all interfaces, and then only with basic auth."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from testkit.stack import Stack

pytestmark = pytest.mark.stack


def test_exposed_prometheus_requires_basic_auth_and_the_stack_still_works():
    stack = Stack.create(
        PROMETHEUS_EXPOSE="true",
        PROMETHEUS_BASIC_AUTH_PASSWORD="expose-test-pw",
        SCRAPE_INTERVAL="2s",
        SCRAPE_TIMEOUT="1s",
    )
    try:
        stack.start()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{stack.prometheus_url}/api/v1/query?query=up", timeout=5)
        assert refused.value.code == 401
        # Self-scrape and health both carry the credentials.
        stack.wait_for('up{job="prometheus"} == 1')
        stack.wait_for('up{job="vllm"} == 1')
        health = subprocess.run(
            [sys.executable, "-m", "app", "health"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert health.stdout.splitlines() == [
            line
            for line in health.stdout.splitlines()
            if line.split(":")[0] in {"proxy", "prometheus", "alertmanager"}
        ]
        assert "expose-test-pw" not in stack.logs() + health.stdout + health.stderr
    finally:
        stack.cleanup()


def test_health_fails_when_the_stack_is_down():
    stack = Stack.create()
    result = subprocess.run(
        [sys.executable, "-m", "app", "health"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "proxy: FAIL" in result.stdout and "prometheus: FAIL" in result.stdout
    stack.cleanup()
