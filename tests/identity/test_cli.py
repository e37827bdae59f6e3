"""``workbench users|roles|clients|token|audit`` on a data directory."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from workbench.cli import cli
from workbench.client.local import open_workbench
from workbench.identity.directory import Directory
from workbench.identity.provider import Provider, ProviderConfig
from workbench.identity.verification import JwtVerifier, StaticJwks


def _run(home: Path, *args: str) -> object:
    result = CliRunner().invoke(cli, ["--data-dir", str(home), "--json", *args])
    assert result.exit_code == 0, result.output
    return (
        json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else result.stdout
    )


def test_identity_commands(tmp_path: Path) -> None:
    home = tmp_path / "wb"
    with open_workbench(home) as wb:
        wb.tenants.create("demo")
    user = _run(
        home,
        "users",
        "add",
        "dave",
        "--tenant",
        "demo",
        "--generate-password",
        "--role",
        "DashboardViewer",
    )
    assert user["generatedPassword"]
    _run(home, "roles", "grant", "ReportingViewer", "--user", "dave", "--tenant", "demo")
    listed = _run(home, "users", "list", "--tenant", "demo")
    assert listed[0]["effectiveRoles"] == ["DashboardViewer", "ReportingViewer"]
    _run(home, "roles", "revoke", "DashboardViewer", "--user", "dave", "--tenant", "demo")
    disabled = _run(home, "users", "disable", "dave", "--tenant", "demo")
    assert disabled["enabled"] is False
    _run(home, "users", "passwd", "dave", "--tenant", "demo", "--password", "a-new-password-1")
    client = _run(
        home, "clients", "add", "adapter", "--tenant", "demo", "--role", "StreamDataWriter"
    )
    assert client["clientSecret"]
    rotated = _run(home, "clients", "rotate-secret", "adapter")
    assert rotated["clientSecret"] != client["clientSecret"]
    assert [c["clientId"] for c in _run(home, "clients", "list")] == ["adapter"]
    # the service creates the signing key on its first start
    with open_workbench(home) as wb:
        Provider(Directory.for_workbench(wb), ProviderConfig(issuer="http://127.0.0.1:5003"))
    issued = _run(home, "token", "--client", "adapter")
    with open_workbench(home) as wb:
        provider = Provider(
            Directory.for_workbench(wb),
            ProviderConfig(issuer="http://127.0.0.1:5003"),
            manage_keys=False,
        )
        verifier = JwtVerifier(
            "http://127.0.0.1:5003", "workbench-api", StaticJwks(provider.keys.public_keys)
        )
        claims = verifier.verify(issued["access_token"])
    assert claims["sub"] == "client:adapter"
    assert claims["roles"] == ["StreamDataWriter"]
    audit = _run(home, "audit", "--tenant", "demo")
    assert [e["action"] for e in audit] == [
        "token.issue",
        "client.rotate-secret",
        "client.create",
        "user.password",
        "user.disable",
        "role.revoke",
        "role.grant",
        "user.create",
    ]
    assert all(e["actor"].startswith("cli") for e in audit)


def test_bad_role_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path),
            "users",
            "add",
            "x",
            "--role",
            "Wizard",
            "--password",
            "long-enough-pw",
        ],
    )
    assert result.exit_code == 1
    assert "unknown role 'Wizard'" in result.output
