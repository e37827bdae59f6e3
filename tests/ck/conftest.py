"""Fixtures of the Construction Kit tests: library paths and a builder for in-memory libraries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.ck import CkLibrary, load_library, load_library_from_documents
from workbench.ck.loader import parse_yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "ck"
DEMO_ENERGY = REPO / "notebooks" / "data" / "Demo.Energy"

BuildLibrary = Callable[..., CkLibrary]


def build_library(
    model_id: str = "Test-1.0.0",
    dependencies: tuple[str, ...] = ("System-[2.0,3.0)",),
    **files: str,
) -> CkLibrary:
    """A library from YAML texts; keyword names are file names with ``__`` for ``/``.

    ``build_library(types__a="types: [...]")`` loads the document ``types/a.yaml``.
    """
    documents = [("ckModel.yaml", {"modelId": model_id, "dependencies": list(dependencies)})]
    for name, text in files.items():
        documents.append((name.replace("__", "/") + ".yaml", parse_yaml(text)))
    return load_library_from_documents(documents)


@pytest.fixture
def build() -> BuildLibrary:
    return build_library


@pytest.fixture(scope="session")
def demo_energy() -> CkLibrary:
    return load_library(DEMO_ENERGY)


@pytest.fixture(scope="session")
def basic() -> CkLibrary:
    return load_library(FIXTURES / "Basic")


@pytest.fixture(scope="session")
def plant() -> CkLibrary:
    return load_library(FIXTURES / "Plant.compiled.yaml")
