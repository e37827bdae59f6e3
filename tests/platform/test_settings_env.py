"""The deployment files set exactly the settings the code reads: every ``WORKBENCH_*`` name in
the manifests, the compose file and the edge files is a field of ``workbench.settings.Settings``
or a name the code reads itself (hub configuration, notebook kernels, CLI); and every setting
is set in ``platform/kubernetes/base/settings.env`` or ``secrets.env.example``, or named there
as deliberately unset. A renamed setting fails here until the platform files follow it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.platform.test_manifests import BUILDS, COMPOSE, kustomize_binary, rendered
from workbench.bots.settings import BotServiceSettings
from workbench.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "platform" / "kubernetes"
NAME = re.compile(r"\bWORKBENCH_[A-Z0-9_]+\b")


def setting_names() -> set[str]:
    """The fields of the settings trees: the platform's and the Bot Service's (bot workers)."""
    names = set()
    for tree in (Settings, BotServiceSettings):
        prefix = str(tree.model_config.get("env_prefix", ""))
        names |= {f"{prefix}{field}".upper() for field in tree.model_fields}
    return names


def names_the_code_reads() -> set[str]:
    """``"WORKBENCH_X"`` string literals in the package and the hub configuration."""
    names: set[str] = set()
    for folder in ("workbench", "hub_config"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(re.findall(r"[\"'](WORKBENCH_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def env_file_names(path: Path) -> tuple[set[str], set[str]]:
    """``(set, deliberately unset)`` WORKBENCH_ names of an env file."""
    assigned, unset = set(), set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("# WORKBENCH_"):
            unset.update(NAME.findall(line.split()[1]))
        elif "=" in line and not line.startswith("#"):
            assigned.add(line.split("=", 1)[0])
    return assigned, unset


def _container_names(objects: tuple[dict[str, Any], ...]) -> set[str]:
    names = set()
    for obj in objects:
        if obj["kind"] in ("ConfigMap", "Secret"):
            names.update(obj.get("data", {}))
            names.update(obj.get("stringData", {}))
        template = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("initContainers", []) + template.get("containers", []):
            names.update(e["name"] for e in container.get("env", []))
    return {n for n in names if n.startswith("WORKBENCH_")}


def deployed_names() -> dict[str, set[str]]:
    """Every WORKBENCH_ name each deployment file set sets."""
    kustomize_binary()  # skips (locally) or fails (CI) without kustomize
    found = {name: _container_names(rendered(name)) for name in BUILDS}
    compose = yaml.safe_load(COMPOSE.read_text())
    found["compose"] = {n for n in compose["x-workbench-settings"] if n.startswith("WORKBENCH_")}
    found["secrets.env.example"] = env_file_names(KUBERNETES / "secrets.env.example")[0]
    return found


def unknown(names: set[str], known: set[str]) -> set[str]:
    return names - known


def test_every_deployed_name_is_a_setting_or_read_by_the_code() -> None:
    known = setting_names() | names_the_code_reads()
    for where, names in deployed_names().items():
        assert names, where
        assert unknown(names, known) == set(), (
            f"{where} sets {sorted(unknown(names, known))}, which no code reads: a renamed or "
            "removed setting? (workbench/settings.py)"
        )


def test_every_setting_is_configured_for_the_cluster() -> None:
    settings_env, unset = env_file_names(KUBERNETES / "base" / "settings.env")
    secrets, _ = env_file_names(KUBERNETES / "secrets.env.example")
    missing = setting_names() - settings_env - secrets - unset
    assert missing == set(), (
        f"settings {sorted(missing)} are not in platform/kubernetes/base/settings.env nor "
        "secrets.env.example: add them (with their deployed value), or list them in "
        "settings.env as '# WORKBENCH_X (why it stays unset)'"
    )
    assert settings_env & secrets == set(), "a setting is in both the ConfigMap and the Secret"


def test_a_renamed_setting_is_caught() -> None:
    """The positive twin: a manifest name that no longer matches a field is reported."""
    known = setting_names() | names_the_code_reads()
    assert "WORKBENCH_IDENTITY_PORT" in known
    assert "WORKBENCH_BOT_EXECUTOR" in known
    assert unknown({"WORKBENCH_IDENTITY_PORT", "WORKBENCH_IDENTITY_PORTNUMBER"}, known) == {
        "WORKBENCH_IDENTITY_PORTNUMBER"
    }
