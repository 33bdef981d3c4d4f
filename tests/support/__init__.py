"""Test-only helpers: independent verifiers, fixture servers and payloads. Never imported by app/."""
