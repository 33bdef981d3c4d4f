"""Fault-injection and load suites.

Every test here runs the proxy as a real process (`python -m app proxy`) against real HTTP servers
on loopback; see tests/support/proxy_process.py and tests/support/counting_upstream.py. The API key
the stand-in gateways trust comes from the `registry` and `api_key` fixtures in tests/conftest.py.
"""
