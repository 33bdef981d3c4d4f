"""Finds secrets in text: every form in which a key, token, signature or password could leak.

`SecretSet` holds named needles. A private key contributes every base64 body line of its PEM as
written on disk and in the other usual serialisations (unencrypted PKCS#8 and PKCS#1); a JWT its
whole text and its payload and signature parts; an Authorization header its whole value and its
`signature="..."` part; a password its text (and, for basic auth, the base64 of `user:password`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MIN_NEEDLE = 12  # shorter fragments could match by chance


def pem_body_lines(pem: str | bytes) -> list[str]:
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("-----") and ":" not in line
    ]


def private_key_lines(private_key: rsa.RSAPrivateKey, on_disk: str | None = None) -> list[str]:
    forms = [
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    ]
    if on_disk:
        forms.append(on_disk.encode())
    lines: list[str] = []
    for form in forms:
        lines += pem_body_lines(form)
    return lines


_SIGNATURE = re.compile(r'signature="([^"]+)"')


@dataclass
class SecretSet:
    needles: dict[str, set[str]] = field(default_factory=dict)

    def add(self, name: str, *values: str) -> None:
        for value in values:
            if value and len(value) >= MIN_NEEDLE:
                self.needles.setdefault(name, set()).add(value)
            elif value:
                raise ValueError(f"secret {name!r} is too short to search for reliably")

    def add_private_key(
        self, name: str, key: rsa.RSAPrivateKey, on_disk: str | None = None
    ) -> None:
        # The last line of a PEM body may be short; keep only distinctive lines.
        for line in private_key_lines(key, on_disk):
            if len(line) >= MIN_NEEDLE:
                self.needles.setdefault(name, set()).add(line)

    def add_jwt(self, name: str, token: str) -> None:
        _, payload, signature = token.split(".")
        self.add(name, token, payload, signature)

    def add_authorization(self, name: str, value: str | None) -> None:
        if not value:
            return
        self.add(name, value)
        match = _SIGNATURE.search(value)
        if match:
            self.add(name, match.group(1))

    def add_password(self, name: str, password: str, *, user: str | None = None) -> None:
        self.add(name, password)
        if user is not None:
            self.add(name, base64.b64encode(f"{user}:{password}".encode()).decode())

    def leaks(self, haystacks: Iterable[tuple[str, str]]) -> list[str]:
        """`where: secret name: excerpt` for every needle found in any (where, text) haystack."""
        found = []
        for where, text in haystacks:
            for name, values in self.needles.items():
                for value in values:
                    index = text.find(value)
                    if index >= 0:
                        excerpt = text[max(0, index - 60) : index + 20].replace("\n", "\\n")
                        found.append(f"{where}: {name}: ...{excerpt}...")
        return found

    def __len__(self) -> int:
        return sum(len(values) for values in self.needles.values())
