"""Error codes and messages; schema cache and rebuild after a CK import."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLError

from tests.conftest import METER_1
from tests.graphql.conftest import Run
from workbench.errors import Forbidden, Unauthenticated
from workbench.graphql import SchemaCache
from workbench.graphql.errors import shape_error

EXTRA_LIBRARY = [
    "modelId: Demo.Water-1.0.0\ndependencies:\n  - System-[2.0,3.0)\n",
    """attributes:
  - {id: Flow, valueType: Double}
types:
  - typeId: Pump
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Demo.Water/Flow, name: Flow, isOptional: true}
""",
]
IMPORT = """mutation($files: [String!]!) { constructionKit { importLibrary(files: $files) {
    modelId addedTypes unchanged } } }"""


def test_validation_failed_names_the_attribute_and_the_fix(demo_gql: Run) -> None:
    error = demo_gql(
        """{ runtime { rtDemoEnergyEnergyMeter(fieldFilter: [
            {attributePath: "voltage", operator: GREATER_THAN, comparisonValue: "abc"}]) {
                totalCount } } }""",
        errors=True,
    )["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert error["path"] == ["runtime", "rtDemoEnergyEnergyMeter"]
    assert "attribute 'voltage' of Demo.Energy/EnergyMeter" in error["message"]
    assert error["extensions"]["details"][0]["attribute"] == "voltage"
    unknown = demo_gql(
        """{ runtime { rtDemoEnergyEnergyMeter(sortOrder: [{attributePath: "colour"}]) {
            totalCount } } }""",
        errors=True,
    )["errors"][0]
    assert unknown["extensions"]["code"] == "VALIDATION_FAILED"
    assert "colour" in unknown["message"]


def test_documents_that_do_not_fit_the_schema_are_validation_errors(demo_gql: Run) -> None:
    for query in (
        "{ runtime { rtNoSuchType { totalCount } } }",
        "{ runtime {",
        "query($x: Int!) { runtime { rtDemoEnergySite(first: $x) { totalCount } } }",
    ):
        error = demo_gql(query, errors=True)["errors"][0]
        assert error["extensions"]["code"] == "VALIDATION_FAILED", error


def test_not_found(demo_gql: Run) -> None:
    error = demo_gql(
        '{ runtime { runtimeEntities(ckTypeId: "Demo.Energy/Nope") { totalCount } } }', errors=True
    )["errors"][0]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "import the library" in error["message"]
    missing = demo_gql(
        """mutation { runtime { demoEnergyEnergyMeters { update(entities: [
            {rtId: "65aaaaaaaaaaaaaaaaaaaaaa", item: {voltage: 1}}]) { rtId } } } }""",
        errors=True,
    )["errors"][0]
    assert missing["extensions"]["code"] == "NOT_FOUND"


def test_model_error_from_a_bad_library(demo_gql: Run) -> None:
    bad = [
        "modelId: Bad-1.0.0\ndependencies:\n  - System-[2.0,3.0)\n"
        "types:\n  - typeId: X\n    derivedFromCkTypeId: System/Nope\n"
    ]
    error = demo_gql(IMPORT, {"files": bad}, errors=True)["errors"][0]
    assert error["extensions"]["code"] == "MODEL_ERROR"
    assert "System/Nope" in error["message"]


def test_auth_errors_keep_their_codes() -> None:
    for raised, code in (
        (Unauthenticated("log in first"), "UNAUTHENTICATED"),
        (Forbidden("tenant acme is not yours"), "FORBIDDEN"),
    ):
        shaped = shape_error(GraphQLError("x", path=["runtime"], original_error=raised))
        assert shaped.extensions == {"code": code}
        assert shaped.message == raised.message


def test_internal_errors_are_masked_and_logged(
    demo_gql: Run, demo: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret connection string in a stack trace")

    monkeypatch.setattr(demo.entity_store, "find", broken)
    with caplog.at_level(logging.ERROR, logger="workbench.graphql"):
        error = demo_gql("{ runtime { rtDemoEnergySite { totalCount } } }", errors=True)["errors"][
            0
        ]
    assert error["extensions"]["code"] == "INTERNAL"
    assert "secret" not in str(error)
    assert "Traceback" not in str(error)
    assert error["extensions"]["reference"] in caplog.text
    assert "secret connection string" in caplog.text


def test_schema_is_cached_and_rebuilt_after_a_ck_import(demo: Any, schemas: SchemaCache) -> None:
    first = schemas.get(demo)
    assert schemas.get(demo) is first
    assert schemas.builds == 1
    result = schemas.execute(demo, IMPORT, {"files": EXTRA_LIBRARY})
    assert not result.errors, result.errors
    assert result.data == {
        "constructionKit": {
            "importLibrary": {
                "modelId": "Demo.Water-1.0.0",
                "addedTypes": ["Demo.Water/Pump"],
                "unchanged": False,
            }
        }
    }
    second = schemas.get(demo)
    assert second is not first
    assert schemas.builds == 2
    created = schemas.execute(
        demo,
        'mutation { runtime { demoWaterPumps { create(entities: [{name: "P1", flow: 2.5}]) '
        "{ rtId } } } }",
    )
    assert not created.errors
    # a request that started on the old schema finishes on it
    old = first.execute_sync(
        f'{{ runtime {{ rtDemoEnergyEnergyMeter(rtId: "{METER_1}") {{ items {{ name }} }} }} }}',
        context=schemas.context(demo),
    )
    assert old.data == {"runtime": {"rtDemoEnergyEnergyMeter": {"items": [{"name": "Meter-001"}]}}}
    assert "rtDemoWaterPump" not in first.sdl()
    assert "rtDemoWaterPump" in second.sdl()


def test_import_through_another_catalog_is_picked_up(
    demo: Any, wb: Any, schemas: SchemaCache
) -> None:
    schemas.get(demo)
    from workbench.ck.loader import load_library_from_documents, parse_yaml
    from workbench.tenancy.catalog import CkCatalog

    # another process: a separate catalog over the same store
    other = CkCatalog(demo.id, demo.entity_store)
    other.import_library(
        load_library_from_documents(
            [(f"f{i}.yaml", parse_yaml(text)) for i, text in enumerate(EXTRA_LIBRARY)]
        )
    )
    result = schemas.execute(demo, "{ runtime { rtDemoWaterPump { totalCount } } }")
    assert result.data == {"runtime": {"rtDemoWaterPump": {"totalCount": 0}}}
