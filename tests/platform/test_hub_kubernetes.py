"""The hub configuration for Kubernetes: KubeSpawner offers one profile per allowed tenant and
the server environment carries the chosen tenant and the user's token. KubeSpawner itself is not
installed here: the configuration file is loaded by traitlets as JupyterHub loads it, and the
profile logic runs against a spawner-shaped object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config.loader import PyFileConfigLoader

from workbench.errors import ValidationError
from workbench.hub.kube_profiles import pass_token, server_environment, tenant_profiles

ROOT = Path(__file__).resolve().parents[2]


class _User:
    def __init__(self, state: dict[str, Any] | None) -> None:
        self.name = "ada@plant-a"
        self._state = state

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self._state


def _spawner(state: dict[str, Any] | None, profile: str = "") -> SimpleNamespace:
    return SimpleNamespace(user=_User(state), user_options={"profile": profile})


def test_a_user_sees_only_their_tenants_with_the_login_tenant_first_choice() -> None:
    state = {"allowed_tenants": ["plant-a", "plant-a-line-1"], "tenant_id": "plant-a-line-1"}
    profiles = asyncio.run(tenant_profiles(_spawner(state)))
    assert [p["slug"] for p in profiles] == ["plant-a", "plant-a-line-1"]
    assert [p["default"] for p in profiles] == [False, True]
    override = profiles[0]["kubespawner_override"]
    assert override["pvc_name_template"] == "nb-{username}--plant-a"
    assert override["extra_labels"] == {"workbench.io/tenant": "plant-a"}


def test_a_user_without_tenants_gets_no_profile_and_so_no_server() -> None:
    assert asyncio.run(tenant_profiles(_spawner({"allowed_tenants": []}))) == []
    assert asyncio.run(tenant_profiles(_spawner(None))) == []


def test_the_environment_follows_the_chosen_profile_and_the_token() -> None:
    environment = server_environment("http://asset-repository:5001", "http://bot-service:5009")
    spawner = _spawner({"access_token": "t0k"}, profile="plant-a")
    pass_token(spawner, {"access_token": "t0k"})
    values = {k: v(spawner) if callable(v) else v for k, v in environment.items()}
    assert values == {
        "WORKBENCH_API_URL": "http://asset-repository:5001",
        "WORKBENCH_BOT_SERVICE_URL": "http://bot-service:5009",
        "WORKBENCH_TENANT": "plant-a",
        "WORKBENCH_API_TOKEN": "t0k",
    }
    with pytest.raises(ValidationError):
        environment["WORKBENCH_TENANT"](_spawner({}, profile="../other"))
    with pytest.raises(PermissionError, match="log in again"):
        pass_token(_spawner({}), {})


def test_the_kubernetes_hub_config_loads_and_wires_kubespawner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "00" * 32)
    monkeypatch.setenv("WORKBENCH_API_URL", "http://asset-repository:5001")
    monkeypatch.setenv("WORKBENCH_IDENTITY_ISSUER", "https://identity.example.org")
    monkeypatch.setenv("WORKBENCH_IDENTITY_URL", "http://identity:5003")
    monkeypatch.setenv("WORKBENCH_HUB_PUBLIC_URL", "https://hub.example.org")
    loader = PyFileConfigLoader("kubernetes_config.py", path=str(ROOT / "hub_config"))
    config = loader.load_config()
    assert config.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert config.KubeSpawner.profile_list is tenant_profiles
    assert config.KubeSpawner.auth_state_hook is pass_token
    assert set(config.KubeSpawner.environment) == {
        "WORKBENCH_API_URL",
        "WORKBENCH_TENANT",
        "WORKBENCH_API_TOKEN",
    }
    assert config.ConfigurableHTTPProxy.should_start is False
    # the hub reaches Identity inside the cluster; browsers use the public issuer
    assert config.WorkbenchAuthenticator.identity_url == "https://identity.example.org"
    assert config.WorkbenchAuthenticator.token_url == "http://identity:5003/token"
    assert config.WorkbenchAuthenticator.oauth_callback_url == (
        "https://hub.example.org/hub/oauth_callback"
    )
    assert config.KubeSpawner.uid != 0


_KUBECONFIG = """apiVersion: v1
kind: Config
current-context: none
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
"""


def _kube_spawner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state: dict[str, Any], profile: str
) -> Any:
    """KubeSpawner configured by the Kubernetes hub config, in its test mode; its API client
    points at a closed loopback port (nothing here talks to a cluster)."""
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(_KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "00" * 32)
    monkeypatch.setenv("WORKBENCH_API_URL", "http://asset-repository:5001")
    config = PyFileConfigLoader("kubernetes_config.py", path=str(ROOT / "hub_config")).load_config()
    user = _User(state)
    user.id, user.url = 1, "/user/ada@plant-a/"  # type: ignore[attr-defined]
    spawner = KubeSpawner(_mock=True, config=config, user=user)
    spawner.user_options = {"profile": profile}
    return spawner


def test_kubespawner_starts_only_an_allowed_tenant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = {"allowed_tenants": ["plant-a"], "tenant_id": "plant-a", "access_token": "t0k"}

    async def spawn_options() -> dict[str, str]:
        refused = _kube_spawner(monkeypatch, tmp_path, state, "plant-b")
        with pytest.raises(ValueError, match="No such profile: plant-b"):
            await refused.load_user_options()
        spawner = _kube_spawner(monkeypatch, tmp_path, state, "plant-a")
        await spawner.load_user_options()
        assert spawner.pvc_name_template == "nb-{username}--plant-a"
        pass_token(spawner, state)
        env: dict[str, str] = spawner.get_env()
        return env

    env = asyncio.run(spawn_options())
    assert env["WORKBENCH_TENANT"] == "plant-a"
    assert env["WORKBENCH_API_TOKEN"] == "t0k"
    assert env["WORKBENCH_API_URL"] == "http://asset-repository:5001"


def test_notebook_pods_carry_the_label_the_network_policies_select(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = {"allowed_tenants": ["plant-a"], "tenant_id": "plant-a", "access_token": "t0k"}

    async def pod_labels() -> dict[str, str]:
        spawner = _kube_spawner(monkeypatch, tmp_path, state, "plant-a")
        await spawner.load_user_options()
        labels: dict[str, str] = spawner._build_pod_labels(spawner.extra_labels)
        return labels

    labels = asyncio.run(pod_labels())
    assert labels["app.kubernetes.io/component"] == "singleuser-server"
    assert labels["workbench.io/tenant"] == "plant-a"
    assert labels["app.kubernetes.io/part-of"] == "mesh-workbench"
