"""A real SMTP server for tests (aiosmtpd) on a free loopback port that keeps what it receives;
optionally with STARTTLS or TLS from the first byte, and a required login.

>>> with Mailbox() as mailbox:                      # doctest: +SKIP
...     send_to("127.0.0.1", mailbox.port); mailbox.messages[0]["Subject"]

:func:`make_test_certificates` makes a CA and a server certificate for 127.0.0.1 (with the
``cryptography`` package), so TLS tests need no openssl binary.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from workbench.testing.background import BackgroundServer

__all__ = ["Mailbox", "make_test_certificates"]


def make_test_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """``(ca.crt, server.crt, server.key)`` in ``directory``: a CA and a server certificate for
    127.0.0.1 and localhost signed by it, valid for two days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workbench test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.crt", "server.crt", "server.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


class Mailbox(BackgroundServer):
    """An aiosmtpd server on 127.0.0.1 keeping each message it receives (``messages``, with
    the envelope's recipients in ``recipients``).

    ``tls``: None (plain), ``"starttls"`` (offered, and required before a login) or ``"ssl"``
    (TLS from the first byte), with ``cert``/``key`` files; ``login``: ``(user, password)``
    that the server requires."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        from aiosmtpd.controller import Controller

        from workbench.testing.http import free_port

        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []
        self.logins: list[str] = []
        self.port = free_port()
        self._login = login
        options: dict[str, Any] = {}
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert), str(key))
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif tls == "ssl":
            options.update(ssl_context=context)
        if login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=tls is not None,
            )
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword) or self._login is None:
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == self._login
        if ok:
            self.logins.append(user)
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
