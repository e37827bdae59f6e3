"""The ``aggregations`` argument of entity lists: in process and over real HTTP."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.graphql.conftest import GENERATED, STATES, Run
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "aggregations-test-token"

GROUPED = """
query($first: Int, $after: String) { runtime { rtDemoEnergyEnergyMeter(
    aggregations: {
      sumAttributePaths: ["voltage"], avgAttributePaths: ["voltage"],
      countAttributePaths: ["voltage"], minValueAttributePaths: ["name"],
      maxValueAttributePaths: ["voltage"],
      groupBy: {groupByAttributePaths: ["state", "parent->name"],
                sumAttributePaths: ["voltage"], countAttributePaths: ["voltage"],
                resolveEnumValuesToNames: true, first: $first, after: $after}}) {
  aggregation { count sumStatistics { attributePath value } avgStatistics { attributePath value }
                countStatistics { attributePath value } minValueStatistics { attributePath value }
                maxValueStatistics { attributePath value } }
  fieldAggregations { groupByAttributePaths keys count cursor
                      sumStatistics { attributePath value } countStatistics { value } }
  fieldAggregationsPageInfo { hasNextPage endCursor }
} } }
"""


def _expected() -> dict[tuple[str, str], tuple[int, float, int]]:
    """(state, building) -> (count, voltage sum, voltages) of the meters fixture."""
    groups: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    groups[("Active", "Hall A")].append(231.5)  # the two demo meters
    groups[("Faulty", "Hall A")].append(None)
    for n in range(GENERATED):
        groups[(STATES[n % 3], "Hall A" if n % 2 else "Hall B")].append(220.0 + n % 25)
    return {
        key: (len(v), sum(x for x in v if x is not None), sum(x is not None for x in v))
        for key, v in groups.items()
    }


def _stat(items: list[dict[str, Any]]) -> Any:
    assert len(items) == 1
    assert items[0].get("attributePath", "voltage") == "voltage"
    return items[0]["value"]


def test_whole_set_and_groups(gql: Run) -> None:
    data = gql(GROUPED)["runtime"]["rtDemoEnergyEnergyMeter"]
    expected = _expected()
    whole = data["aggregation"]
    voltages = [231.5] + [220.0 + n % 25 for n in range(GENERATED)]
    assert whole["count"] == GENERATED + 2
    assert _stat(whole["sumStatistics"]) == pytest.approx(sum(voltages))
    assert _stat(whole["avgStatistics"]) == pytest.approx(sum(voltages) / len(voltages))
    assert _stat(whole["countStatistics"]) == len(voltages)
    assert _stat(whole["maxValueStatistics"]) == 244.0
    assert whole["minValueStatistics"] == [{"attributePath": "name", "value": "Gen-000"}]
    groups = data["fieldAggregations"]
    assert [tuple(g["keys"]) for g in groups] == sorted(expected)
    for group in groups:
        count, total, present = expected[tuple(group["keys"])]
        assert group["groupByAttributePaths"] == ["state", "parent->name"]
        assert group["count"] == count
        assert _stat(group["countStatistics"]) == present
        assert (_stat(group["sumStatistics"]) or 0) == pytest.approx(total)
    assert data["fieldAggregationsPageInfo"] == {
        "hasNextPage": False,
        "endCursor": groups[-1]["cursor"],
    }


def test_groups_page_with_first_and_after(gql: Run) -> None:
    seen: list[list[Any]] = []
    after = None
    while True:
        data = gql(GROUPED, {"first": 2, "after": after})["runtime"]["rtDemoEnergyEnergyMeter"]
        seen.extend(g["keys"] for g in data["fieldAggregations"])
        if not data["fieldAggregationsPageInfo"]["hasNextPage"]:
            break
        after = data["fieldAggregationsPageInfo"]["endCursor"]
    assert [tuple(k) for k in seen] == sorted(_expected())


def test_filters_and_search_apply_and_enum_keys_without_names(gql: Run) -> None:
    query = """{ runtime { rtDemoEnergyMeter(
        fieldFilter: [{attributePath: "parent->name", operator: EQUALS, comparisonValue: "Hall B"}],
        searchFilter: {searchTerm: "gen-0", attributePaths: ["name"]},
        aggregations: {groupBy: {groupByAttributePaths: ["state"]}}) {
      totalCount fieldAggregations { keys count } } } }"""
    data = gql(query)["runtime"]["rtDemoEnergyMeter"]
    counts: dict[str, int] = defaultdict(int)
    for n in range(0, 100, 2):  # Gen-000 .. Gen-099 in Hall B
        counts[STATES[n % 3]] += 1
    keys = {"Active": 1, "Faulty": 2, "Retired": 3}
    assert data["fieldAggregations"] == [
        {"keys": [keys[state]], "count": counts[state]}
        for state in sorted(counts, key=lambda s: keys[s])
    ]
    assert data["totalCount"] == sum(counts.values())


def test_runtime_entities_takes_aggregations(gql: Run) -> None:
    query = """{ runtime { runtimeEntities(ckTypeId: "Demo.Energy/NamedAsset",
        aggregations: {groupBy: {groupByAttributePaths: ["ckTypeId"]}}) {
      aggregation { count } fieldAggregations { keys count } } } }"""
    data = gql(query)["runtime"]["runtimeEntities"]
    assert data["aggregation"] == {"count": GENERATED + 5}
    assert data["fieldAggregations"] == [
        {"keys": ["Demo.Energy/Building"], "count": 2},
        {"keys": ["Demo.Energy/EnergyMeter"], "count": GENERATED + 2},
        {"keys": ["Demo.Energy/Site"], "count": 1},
    ]


def test_bad_paths_are_refused_naming_them(gql: Run) -> None:
    query = """{ runtime { rtDemoEnergyMeter(aggregations: {sumAttributePaths: ["name"]}) {
      aggregation { count } } } }"""
    assert "cannot sum 'name'" in str(gql(query, errors=True)["errors"])
    query = """{ runtime { rtDemoEnergyMeter(aggregations: {
        groupBy: {groupByAttributePaths: ["tags", "nosuch"]}}) {
      fieldAggregations { count } } } }"""
    text = str(gql(query, errors=True)["errors"])
    assert "cannot group by 'tags'" in text
    assert "nosuch" in text


def test_aggregations_over_http(wb: Any, meters: Any) -> None:
    app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
    with ServiceServer(app) as server:
        response = httpx.post(
            f"{server.url}/tenants/{meters.id}/graphql",
            json={"query": GROUPED, "variables": {"first": 3}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data = body["data"]["runtime"]["rtDemoEnergyEnergyMeter"]
    assert data["aggregation"]["count"] == GENERATED + 2
    assert [tuple(g["keys"]) for g in data["fieldAggregations"]] == sorted(_expected())[:3]
    assert data["fieldAggregationsPageInfo"]["hasNextPage"] is True
