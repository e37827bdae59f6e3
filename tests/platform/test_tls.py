"""TLS on one machine: the generated loopback certificate, ``--cert``/``--key`` checks, and
``workbench up --tls`` serving Identity and the Asset Repository over https."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.services.test_up import _client_credentials_token, _free_port
from workbench.errors import ValidationError
from workbench.services.tls import check_tls_files, loopback_certificate, trust_bundle
from workbench.testing.up import read_until_up


def test_the_loopback_certificate_names_loopback_and_is_reused(tmp_path: Path) -> None:
    files = loopback_certificate(tmp_path / "tls")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert files.key.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    again = loopback_certificate(tmp_path / "tls")
    assert again.cert.read_bytes() == files.cert.read_bytes()
    assert check_tls_files(files.cert, files.key) == files


def test_a_certificate_with_another_key_is_refused(tmp_path: Path) -> None:
    first = loopback_certificate(tmp_path / "a")
    second = loopback_certificate(tmp_path / "b")
    with pytest.raises(ValidationError, match="matching unencrypted PEM key"):
        check_tls_files(first.cert, second.key)
    with pytest.raises(ValidationError, match="--cert was given without --key"):
        check_tls_files(first.cert, None)
    assert check_tls_files(None, None) is None


def test_the_trust_bundle_keeps_the_public_roots(tmp_path: Path) -> None:
    files = loopback_certificate(tmp_path / "tls")
    bundle = trust_bundle(files.cert, tmp_path / "tls" / "bundle.pem")
    text = bundle.read_text()
    assert text.count("BEGIN CERTIFICATE") > 10
    assert text.rstrip().endswith(files.cert.read_text().rstrip())
    ssl.create_default_context(cafile=str(bundle))  # loads


@pytest.mark.slow
def test_up_tls_serves_identity_and_the_asset_repository_over_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, identity_port = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--tls", "--data-dir", str(tmp_path),
        "--port", f"asset-repository={port}", "--port", f"identity={identity_port}",
        "--service", "identity", "--service", "asset-repository", "--demo-days", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = rest = ""
    try:
        output = read_until_up(process)
        assert "Mesh Workbench is up" in output, output
        assert f"https://127.0.0.1:{port}/tenants/demo/graphql/playground" in output
        cert = tmp_path / "secrets" / "tls" / "loopback.crt"
        only_ours = ssl.create_default_context(cafile=str(cert))
        for service_port in (port, identity_port):
            url = f"https://127.0.0.1:{service_port}/healthz"
            with urllib.request.urlopen(url, timeout=5, context=only_ours) as r:
                assert r.status == 200
            # the positive twin: without the generated certificate the server is not trusted
            with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
                urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context())
        discovery = f"https://127.0.0.1:{identity_port}/.well-known/openid-configuration"
        with urllib.request.urlopen(discovery, timeout=5, context=only_ours) as r:
            assert json.load(r)["issuer"] == f"https://127.0.0.1:{identity_port}"
        # a real token over https, accepted by the Asset Repository (its JWKS fetched over https)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        token = _client_credentials_token(tmp_path, f"https://127.0.0.1:{identity_port}")
        answer = httpx.post(
            f"https://127.0.0.1:{port}/tenants/demo/graphql",
            json={"query": "{ runtime { rtDemoEnergyMeter { items { rtId } } } }"},
            headers={"Authorization": f"Bearer {token}"},
            verify=only_ours,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]["runtime"]["rtDemoEnergyMeter"]["items"]) == 2
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output + rest


@pytest.mark.slow
def test_up_tls_with_workers_serves_the_asset_repository_over_https_in_every_worker(
    tmp_path: Path,
) -> None:
    """``workbench up --tls --workers 2``: both Asset Repository workers answer /healthz over
    https with the generated certificate (and are not trusted without it)."""
    from workbench.services.asset_repository.workers import WORKER_HEADER

    port, identity_port = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "workbench", "up", "--tls", "--workers", "2",
        "--data-dir", str(tmp_path), "--port", f"asset-repository={port}",
        "--port", f"identity={identity_port}", "--service", "identity",
        "--service", "asset-repository", "--no-demo",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = rest = ""
    try:
        output = read_until_up(process)
        assert "Mesh Workbench is up" in output, output
        assert f"https://127.0.0.1:{port}" in output
        cert = tmp_path / "secrets" / "tls" / "loopback.crt"
        only_ours = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port}/healthz"
        seen: set[str] = set()
        for _ in range(200):  # a new connection each: the kernel spreads them over the workers
            response = httpx.get(url, timeout=5, verify=only_ours)
            assert response.status_code == 200, response.text
            seen.add(response.headers[WORKER_HEADER])
            if seen == {"0", "1"}:
                break
        assert seen == {"0", "1"}, f"only workers {seen} answered over https"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url, timeout=5, verify=ssl.create_default_context())
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output + rest
