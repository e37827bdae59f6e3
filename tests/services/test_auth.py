"""The authenticator port: static bearer tokens, --no-auth, tenant and scope checks."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

import workbench
from tests.services.conftest import ALL_TOKEN, ENERGY_TOKEN, client_for
from workbench.errors import ValidationError
from workbench.services import NoAuthAuthenticator, StaticTokenAuthenticator, create_app
from workbench.services.auth import READ_SCOPE, Principal, authenticator_from_settings
from workbench.settings import Settings
from workbench.testing.http import ServiceServer

pytestmark = pytest.mark.integration

PROTECTED = [
    ("GET", "/tenants/energy/ck/libraries"),
    ("GET", "/tenants/energy/runtime/export"),
    ("GET", "/tenants/energy/streams/Demo.Energy/EnergyMeter"),
    ("POST", "/tenants/energy/entities/find"),
    ("POST", "/tenants/energy/graphql"),
    ("GET", "/tenants/energy/graphql?query=%7B__typename%7D"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_token_is_401(server: ServiceServer, method: str, path: str) -> None:
    with client_for(server, None) as anonymous:
        response = anonymous.request(method, path, json={"query": "{ __typename }"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert "Bearer" in response.json()["message"]


def test_bad_token_and_bad_scheme_are_401(server: ServiceServer) -> None:
    with client_for(server, "not-the-token") as wrong:
        assert wrong.get("/tenants/energy/ck/libraries").status_code == 401
    with httpx.Client(base_url=server.url) as http:
        basic = http.get("/tenants/energy/ck/libraries", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    assert "Bearer" in basic.json()["message"]


def test_good_token_passes(server: ServiceServer) -> None:
    with client_for(server, ALL_TOKEN) as http:
        assert http.get("/tenants/energy/ck/libraries").status_code == 200


def test_token_for_one_tenant_gets_403_on_another_even_if_it_does_not_exist(
    server: ServiceServer,
) -> None:
    with client_for(server, ENERGY_TOKEN) as http:
        assert http.get("/tenants/energy/ck/libraries").status_code == 200
        assert http.get("/tenants/other/ck/libraries").status_code == 403
        # no probing of tenant names: an unknown tenant answers like a forbidden one
        assert http.get("/tenants/ghost/ck/libraries").status_code == 403


def test_no_auth_lets_everyone_in_and_warns_on_every_start(
    service_wb: workbench.Workbench, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workbench")
    for _ in range(2):
        app = create_app(workbench=service_wb, no_auth=True)
        with ServiceServer(app) as server, client_for(server, None) as http:
            assert http.get("/tenants/energy/ck/libraries").status_code == 200
    warnings = [r for r in caplog.records if "authentication is OFF" in r.getMessage()]
    assert len(warnings) == 2


def test_without_a_token_setting_the_service_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "wb", api_token=None, dev_static_token=True)
    with pytest.raises(ValidationError, match="WORKBENCH_API_TOKEN"):
        create_app(settings)
    authenticator = authenticator_from_settings(settings, no_auth=True)
    assert isinstance(authenticator, NoAuthAuthenticator)


def test_identity_jwts_are_the_default_and_static_tokens_need_the_dev_flag(
    tmp_path: Path,
) -> None:
    from workbench.services.auth import JwtAuthenticator

    settings = Settings(home=tmp_path, api_token=SecretStr("abcdefgh12"))
    assert isinstance(authenticator_from_settings(settings), JwtAuthenticator)
    static = authenticator_from_settings(settings, dev_static_token=True)
    assert isinstance(static, StaticTokenAuthenticator)


def test_settings_token_may_be_limited_to_tenants(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        api_token=SecretStr("abcdefgh12"),
        api_token_tenants="energy, plant-a",
        dev_static_token=True,
    )
    authenticator = authenticator_from_settings(settings)
    assert isinstance(authenticator, StaticTokenAuthenticator)
    principal = authenticator._tokens[0][1]
    assert principal.tenants == frozenset({"energy", "plant-a"})


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ValidationError, match="too short"):
        StaticTokenAuthenticator("abc")


def test_principal_scopes() -> None:
    reader = Principal("reader", frozenset({"energy"}), frozenset({READ_SCOPE}))
    reader.check_scope(READ_SCOPE)
    with pytest.raises(workbench.Forbidden, match="assets:write"):
        reader.check_scope("assets:write")
    with pytest.raises(workbench.Forbidden, match="other"):
        reader.check_tenant("other")


def test_read_only_principal_cannot_write(service_wb: workbench.Workbench) -> None:
    class ReadOnly(StaticTokenAuthenticator):
        def authenticate(self, connection):  # type: ignore[no-untyped-def]
            super().authenticate(connection)
            return Principal("reader", None, frozenset({READ_SCOPE}))

    app = create_app(workbench=service_wb, auth=ReadOnly(ALL_TOKEN))
    with ServiceServer(app) as server, client_for(server, ALL_TOKEN) as http:
        assert http.get("/tenants/energy/ck/libraries").status_code == 200
        denied = http.post(
            "/tenants/energy/entities/delete", json={"rtIds": ["6560a1b2c3d4e5f607182933"]}
        )
        assert denied.status_code == 403
        mutation = http.post(
            "/tenants/energy/graphql",
            json={
                "query": "mutation { runtime { runtimeEntities { delete(entities: [{rtId: "
                '"6560a1b2c3d4e5f607182933"}], options: ARCHIVE) } } }'
            },
        )
        assert mutation.status_code == 403
        assert mutation.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("scopes", "roles", "expected"),
    [
        ({"workbench_api"}, set(), {"assets:read"}),  # a client with no roles only reads
        ({"workbench_api"}, {"Development"}, {"assets:read", "assets:write"}),
        ({"workbench_api"}, {"DataModelManagement"}, {"assets:read", "assets:ck-import"}),
        ({"workbench_api"}, {"StreamDataWriter"}, {"assets:read", "assets:streams-write"}),
        ({"workbench_api"}, {"StreamDataAdmin"}, {"assets:read", "assets:streams-write"}),
        (
            {"workbench_api.data_model_management"},
            {"DataModelManagement", "Development"},
            {"assets:read", "assets:ck-import"},
        ),
        (
            {"workbench_api", "workbench_api.read_only"},
            {"Development", "DataModelManagement", "StreamDataWriter"},
            {"assets:read"},  # read-only never changes anything, whatever the roles
        ),
        ({"openid", "profile"}, {"Development"}, set()),  # no API scope: nothing
    ],
)
def test_the_role_model(scopes: set[str], roles: set[str], expected: set[str]) -> None:
    from workbench.services.authorization import operation_scopes

    assert operation_scopes(scopes, roles) == expected
