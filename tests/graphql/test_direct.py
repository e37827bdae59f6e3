"""List items completed straight from stored entities (workbench.graphql.direct): the same
results and errors as the normal path, which they fall back to."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from workbench.graphql import SchemaCache, direct

LEAVES = """{ runtime { rtDemoEnergyEnergyMeter(first: 50, sortOrder: [{attributePath: "name"}]) {
  totalCount pageInfo { hasNextPage endCursor }
  items { rtId id: rtId name serialNumber state voltage __typename
          rtVersion rtCreationDateTime rtWellKnownName description }
} } }"""


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records whether each call of direct_items completed the page (True) or declined."""
    calls: list[bool] = []
    original = direct.direct_items

    def spy(*args: Any) -> Any:
        found = original(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr("workbench.graphql.resolvers.direct_items", spy)
    return calls


def _normal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.graphql.resolvers.direct_items", lambda *a: None)


def _run(meters: Any, query: str) -> Any:
    return SchemaCache().execute(meters, query).formatted


def test_plain_leaves_complete_directly_with_the_normal_paths_result(
    meters: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        _normal(patch)
        expected = _run(meters, LEAVES)
    calls = _spy(monkeypatch)
    got = _run(meters, LEAVES)
    assert calls == [True]
    assert "errors" not in got
    assert got == expected
    items = got["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert len(items) == 50
    assert list(items[0]) == [
        "rtId",
        "id",
        "name",
        "serialNumber",
        "state",
        "voltage",
        "__typename",
        "rtVersion",
        "rtCreationDateTime",
        "rtWellKnownName",
        "description",
    ]
    assert items[0]["state"] in {"ACTIVE", "FAULTY", "RETIRED"}  # the enum's GraphQL names


@pytest.mark.parametrize(
    "query",
    [
        # a record, an association, edges, a directive, a fragment: the normal path
        "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { name phaseL1 { voltage } } } } }",
        "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { name parent { rtId } } } } }",
        "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { name } edges { cursor } } } }",
        "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { name @include(if: false) } } } }",
        "{ runtime { rtDemoEnergyEnergyMeter(first: 5) { items { ... on DemoEnergyEnergyMeter "
        "{ name } } } } }",
    ],
)
def test_selections_that_need_more_take_the_normal_path(
    meters: Any, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    with monkeypatch.context() as patch:
        _normal(patch)
        expected = _run(meters, query)
    calls = _spy(monkeypatch)
    assert _run(meters, query) == expected
    assert calls == [False]


def test_a_value_that_does_not_coerce_gives_the_normal_paths_error(
    meters: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = meters.entity_store
    find = store.find

    def bad_find(query: Any) -> Any:  # one stored value of the wrong type
        page = find(query)
        first = page.items[0]
        broken = replace(first, attributes={**first.attributes, "Voltage": "not a number"})
        return replace(page, items=[broken, *page.items[1:]])

    monkeypatch.setattr(store, "find", bad_find)
    with monkeypatch.context() as patch:
        _normal(patch)
        expected = _run(meters, LEAVES)
    calls = _spy(monkeypatch)
    got = _run(meters, LEAVES)
    assert calls == [False]  # declined: the page goes the normal way, which reports it
    assert got["data"] == expected["data"]
    assert [e["path"] for e in got["errors"]] == [e["path"] for e in expected["errors"]]
    assert got["errors"][0]["path"] == ["runtime", "rtDemoEnergyEnergyMeter", "items", 0, "voltage"]
    assert got["errors"][0]["extensions"]["code"] == expected["errors"][0]["extensions"]["code"]
    items = got["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert items[0]["voltage"] is None  # the field's error, the rest of the item is there
    assert items[0]["name"] == "Gen-000"


def test_other_executors_get_ordinary_sources() -> None:
    assert direct.DIRECT_COMPLETION.get() is False  # outside the package's executors
