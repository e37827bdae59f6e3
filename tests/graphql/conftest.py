"""Fixtures: the demo tenant with a few hundred generated meters, and a GraphQL runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import BUILDING
from workbench.graphql import GraphQLContext, SchemaCache
from workbench.messaging.local import LocalMessageBus
from workbench.runtime.entity import AssociationInput, EntityInput

GENERATED = 300
STATES = ("Active", "Faulty", "Retired")


@pytest.fixture
def meters(demo: Any) -> Any:
    """The demo tenant plus a second building and 300 generated energy meters."""
    second = demo.entities.create(
        "Demo.Energy/Building",
        {"name": "Hall B", "floorCount": 3},
        associations=[("System/ParentChild", "6560a1b2c3d4e5f607182930")],
    )
    demo.entities.apply(
        creates=[
            EntityInput(
                "Demo.Energy/EnergyMeter",
                {
                    "name": f"Gen-{n:03d}",
                    "serialNumber": f"GEN-{n:04d}",
                    "state": STATES[n % 3],
                    "voltage": 220.0 + n % 25,
                    "tags": ["generated", f"group-{n % 4}"],
                    "phaseL1": {"voltage": 225.0 + n % 10, "current": float(n % 7)},
                    **({"description": "in the east hall"} if n % 10 == 0 else {}),
                },
                associations=[
                    AssociationInput("System/ParentChild", BUILDING if n % 2 else second.rt_id)
                ],
            )
            for n in range(GENERATED)
        ]
    )
    demo.extra_building = second.rt_id
    return demo


Run = Callable[..., dict[str, Any]]


@pytest.fixture
def bus() -> LocalMessageBus:
    return LocalMessageBus()


@pytest.fixture
def schemas(bus: LocalMessageBus) -> SchemaCache:
    return SchemaCache(bus=bus)


def _runner(schemas: SchemaCache, tenant: Any) -> Run:
    def run(query: str, variables: dict[str, Any] | None = None, *, errors: bool = False) -> Any:
        result = schemas.execute(tenant, query, variables)
        if errors:
            assert result.errors, f"expected errors, got {result.data}"
            return result.formatted
        assert not result.errors, [e.formatted for e in result.errors]
        return result.data

    return run


@pytest.fixture
def gql(schemas: SchemaCache, meters: Any) -> Run:
    """Run a GraphQL request against the meters tenant; returns ``data`` (asserts no errors),
    or the formatted result with ``errors=True`` (asserts errors)."""
    return _runner(schemas, meters)


@pytest.fixture
def demo_gql(schemas: SchemaCache, demo: Any) -> Run:
    return _runner(schemas, demo)


@pytest.fixture
def context(schemas: SchemaCache, meters: Any) -> GraphQLContext:
    return schemas.context(meters)
