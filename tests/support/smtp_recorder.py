"""`SmtpRecorder`: a minimal SMTP server on loopback that keeps every message it is sent.

Enough of RFC 5321 for Alertmanager's e-mail notifier without TLS or AUTH: EHLO/HELO, MAIL,
RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT. Python 3.12 dropped `smtpd`, hence this.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message

from testkit.closing import ClosesOnExit


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.raw)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 smtp-recorder ready")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-smtp-recorder")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 smtp-recorder")
            elif verb == "MAIL":
                sender = command.split(":", 1)[1].split()[0].strip("<>")
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].split()[0].strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.server.record(Mail(sender, tuple(recipients), b"".join(lines)))
                sender, recipients = "", []
                self.reply("250 OK queued")
            elif verb in {"RSET", "NOOP"}:
                sender, recipients = ("", []) if verb == "RSET" else (sender, recipients)
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.mails: list[Mail] = []

    def record(self, mail: Mail) -> None:
        with self._lock:
            self.mails.append(mail)


class SmtpRecorder(ClosesOnExit):
    def __init__(self) -> None:
        self._server = _Server()
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def mails(self) -> list[Mail]:
        with self._server._lock:
            return list(self._server.mails)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
