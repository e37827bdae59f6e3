"""LDAP login against a real OpenLDAP (slapd): bind, user lookup, group → role mapping, and
provisioning on first login."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.identity.conftest import Browser, IdentityInstance
from workbench.identity.ldap import LdapSettings, _ldap3, ldap_login
from workbench.identity.verification import JwtVerifier, RemoteJwks
from workbench.testing.servers import require_server_url

pytestmark = pytest.mark.integration

_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "slapd.sh"


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A slapd: the one named by WORKBENCH_TEST_LDAP_URL, or one started with .ci/slapd.sh
    when slapd is installed; otherwise skip (locally) or fail (CI=true)."""
    keys = ("URL", "BASE_DN", "BIND_DN", "BIND_PASSWORD")
    if os.environ.get("WORKBENCH_TEST_LDAP_URL") or not shutil.which(
        "slapd", path="/usr/sbin:" + os.environ.get("PATH", "")
    ):
        require_server_url("WORKBENCH_TEST_LDAP_URL", "OpenLDAP (slapd)")
        yield {k: os.environ[f"WORKBENCH_TEST_LDAP_{k}"] for k in keys}
        return
    pid_file = tmp_path_factory.mktemp("slapd") / "slapd.pid"
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_TEST_LDAP_URL"}
    out = subprocess.run(
        ["bash", str(_SCRIPT), str(pid_file)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout
    values = {}
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = value.strip("'")
    try:
        yield {k: values[f"WORKBENCH_TEST_LDAP_{k}"] for k in keys}
    finally:
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        shutil.rmtree(values.get("SLAPD_DATA_DIR", "/nonexistent"), ignore_errors=True)


@pytest.fixture
def ldap_tree(slapd: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Users carl (engineers, operators) and dora (no group) under a fresh OU."""
    ldap3 = _ldap3()
    suffix = secrets.token_hex(4)
    base = slapd["BASE_DN"]
    people, groups = f"ou=people-{suffix},{base}", f"ou=groups-{suffix},{base}"
    passwords = {"carl": secrets.token_urlsafe(12), "dora": secrets.token_urlsafe(12)}
    conn = ldap3.Connection(slapd["URL"], slapd["BIND_DN"], slapd["BIND_PASSWORD"], auto_bind=True)
    try:
        for ou in (people, groups):
            conn.add(ou, "organizationalUnit")
        for uid, password in passwords.items():
            conn.add(
                f"uid={uid},{people}",
                ["inetOrgPerson"],
                {
                    "cn": uid.title(),
                    "sn": uid.title(),
                    "mail": f"{uid}@corp.example",
                    "userPassword": password,
                },
            )
            assert conn.result["result"] == 0, conn.result
        for cn in ("engineers", "operators"):
            conn.add(f"cn={cn},{groups}", ["groupOfNames"], {"member": [f"uid=carl,{people}"]})
            assert conn.result["result"] == 0, conn.result
        yield {"people": people, "groups": groups, "passwords": passwords, "conn": conn}
    finally:
        conn.unbind()


def _settings(slapd: dict[str, str], tree: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "ldap",
        "name": "corp",
        "url": slapd["URL"],
        "bindDn": slapd["BIND_DN"],
        "bindPassword": slapd["BIND_PASSWORD"],
        "userBase": tree["people"],
        "groupBase": tree["groups"],
        "groupRoles": {
            "engineers": ["DataModelManagement", "Development"],
            "operators": ["StreamDataWriter"],
        },
    }


def test_ldap_bind_lookup_and_groups(slapd: dict[str, str], ldap_tree: dict[str, Any]) -> None:
    settings = LdapSettings.from_document(_settings(slapd, ldap_tree))
    carl = ldap_login(settings, "carl", ldap_tree["passwords"]["carl"])
    assert carl is not None
    assert carl.groups == ("engineers", "operators")
    assert carl.roles == ("DataModelManagement", "Development", "StreamDataWriter")
    assert carl.email == "carl@corp.example"
    assert ldap_login(settings, "carl", "wrong") is None
    assert ldap_login(settings, "carl", "") is None  # never an anonymous bind
    assert ldap_login(settings, "nobody", "x") is None
    assert ldap_login(settings, "*", ldap_tree["passwords"]["carl"]) is None  # filter escaped
    dora = ldap_login(settings, "dora", ldap_tree["passwords"]["dora"])
    assert dora is not None
    assert dora.roles == ()


def test_ldap_login_provisions_user(
    identity: IdentityInstance, browser: Browser, slapd: dict[str, str], ldap_tree: dict[str, Any]
) -> None:
    identity.directory.put_upstream("demo", "corp", _settings(slapd, ldap_tree))
    assert identity.directory.find_user("demo", "carl") is None
    code, verifier = browser.authorize(
        "notebook", username="carl", password=ldap_tree["passwords"]["carl"], tenant="demo"
    )
    tokens = browser.exchange("notebook", code, verifier).json()
    claims = JwtVerifier(identity.url, "workbench-api", RemoteJwks(identity.url + "/jwks")).verify(
        tokens["access_token"]
    )
    assert claims["roles"] == ["DataModelManagement", "Development", "StreamDataWriter"]
    user = identity.directory.get_user("demo", "carl")
    assert user.source == "ldap:corp"
    assert user.password_hash is None
    assert user.email == "carl@corp.example"
    # group membership changes in LDAP apply at the next login
    ldap_tree["conn"].modify(
        f"cn=operators,{ldap_tree['groups']}",
        {"member": [("MODIFY_REPLACE", [f"uid=dora,{ldap_tree['people']}"])]},
    )
    other = Browser(identity.url)
    try:
        other.authorize(
            "notebook", username="carl", password=ldap_tree["passwords"]["carl"], tenant="demo"
        )
    finally:
        other.close()
    assert identity.directory.get_user("demo", "carl").roles == [
        "DataModelManagement",
        "Development",
    ]
    # a wrong LDAP password is a failed login
    page = Browser(identity.url)
    try:
        first = page.http.get("/login", params={"tenant": "demo"})
        from tests.identity.conftest import form_value

        response = page.http.post(
            "/login",
            data={
                "csrf_token": form_value(first.text, "csrf_token"),
                "next": "/",
                "tenant": "demo",
                "username": "carl",
                "password": "wrong-password",
            },
        )
        assert response.status_code == 401
    finally:
        page.close()
