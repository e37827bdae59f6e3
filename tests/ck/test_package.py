"""The public API of workbench.ck and its layering (no web framework, no other layer)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import workbench.ck

PACKAGE = Path(workbench.ck.__file__).parent
ALLOWED_THIRD_PARTY = {"yaml"}


def test_public_api_is_exported() -> None:
    for name in workbench.ck.__all__:
        assert hasattr(workbench.ck, name), name
    assert {
        "load_library",
        "resolve_model",
        "select_versions",
        "system_library",
        "Version",
        "VersionRange",
        "CkModel",
        "graphql_type_name",
        "apply_steps",
    } <= set(workbench.ck.__all__)


def test_ck_imports_only_stdlib_yaml_and_errors() -> None:
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                allowed = (
                    top in sys.stdlib_module_names
                    or top in ALLOWED_THIRD_PARTY
                    or module.startswith("workbench.ck")
                    or module == "workbench.errors"
                )
                assert allowed, f"{source.name} imports {module}"


def test_system_yaml_is_package_data() -> None:
    assert sorted(
        p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "system").rglob("*.yaml")
    ) == [
        "system/associations/roles.yaml",
        "system/attributes/common.yaml",
        "system/attributes/queries.yaml",
        "system/ckModel.yaml",
        "system/types/configuration.yaml",
        "system/types/entity.yaml",
        "system/types/queries.yaml",
    ]
