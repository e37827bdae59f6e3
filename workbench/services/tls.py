"""TLS for services on one machine (``workbench up --tls``, ``workbench serve ... --cert --key``).

:func:`loopback_certificate` makes (once) a self-signed certificate for ``localhost``,
``127.0.0.1`` and ``::1`` in ``<data>/secrets/tls/``; :func:`trust_bundle` writes the public CA
bundle plus that certificate, for processes that must verify it (``SSL_CERT_FILE``).
On Kubernetes TLS is terminated by the ingress instead (``platform/kubernetes``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workbench.errors import ValidationError

__all__ = ["TlsFiles", "check_tls_files", "client_context", "loopback_certificate", "trust_bundle"]

#: a generated certificate is replaced when it expires within this many days
RENEW_BEFORE_DAYS = 30
VALID_DAYS = 365


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key."""

    cert: Path
    key: Path


def check_tls_files(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """Both or neither of ``--cert``/``--key``; both must be files uvicorn can load together."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--cert", "--key") if key is None else ("--key", "--cert")
        raise ValidationError(f"{given} was given without {missing}: pass both, or neither")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError(
            f"cannot use certificate {cert} with key {key}: {exc}; pass a PEM certificate and "
            "its matching unencrypted PEM key"
        ) from exc
    return TlsFiles(cert, key)


def loopback_certificate(directory: Path) -> TlsFiles:
    """The self-signed loopback certificate in ``directory`` (created, or renewed near expiry)."""
    from cryptography import x509

    cert_path, key_path = directory / "loopback.crt", directory / "loopback.key"
    if cert_path.is_file() and key_path.is_file():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.not_valid_after_utc - datetime.now(UTC) > timedelta(days=RENEW_BEFORE_DAYS):
            return TlsFiles(cert_path, key_path)
    cert_pem, key_pem = _self_signed_pem()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(key_path, key_pem, 0o600)
    _write(cert_path, cert_pem, 0o644)
    return TlsFiles(cert_path, key_path)


def trust_bundle(cert: Path, target: Path) -> Path:
    """Write ``target``: the public CA bundle (certifi) followed by ``cert``; returns ``target``.
    Point ``SSL_CERT_FILE`` at it so httpx and urllib verify the loopback certificate while
    public servers (upstream identity providers) still verify as before."""
    import certifi

    public = Path(certifi.where()).read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(target, public.rstrip(b"\n") + b"\n" + cert.read_bytes(), 0o644)
    return target


def client_context(cafile: Path | None) -> ssl.SSLContext:
    """A verifying client context trusting ``cafile`` (the system defaults when None)."""
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def _self_signed_pem() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mesh Workbench loopback")])
    now = datetime.now(UTC)
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` atomically with ``mode`` (readers never see half a file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)
