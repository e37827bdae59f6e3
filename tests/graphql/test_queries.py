"""Typed list queries, filters, search, sort, paging, polymorphism, CK introspection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BUILDING, METER_1, METER_2
from tests.graphql.conftest import GENERATED, Run

DOC_QUERY = """
query {
  runtime {
    rtDemoEnergyEnergyMeter(
      first: 50, after: "%(cursor)s",
      fieldFilter: [{attributePath: "state", operator: EQUALS, comparisonValue: "Active"}],
      searchFilter: {searchTerm: "hall", attributePaths: ["name", "description"]},
      sortOrder: [{attributePath: "serialNumber", sortOrder: ASCENDING}]
    ) {
      totalCount
      pageInfo { hasNextPage endCursor }
      items {
        rtId ckTypeId rtWellKnownName rtCreationDateTime rtChangedDateTime rtVersion
        name serialNumber state voltage
        phaseL1 { voltage current }
        parent { ... on DemoEnergyBuilding { name } }
        supplies(first: 10) { items { rtId name } }
      }
      edges { cursor node { rtId } }
    }
    runtimeEntities(ckTypeId: "Demo.Energy/Meter", first: 100) { items { rtId ckTypeId } }
  }
  constructionKit { models { modelId } types(ckModelId: "Demo.Energy") { ckTypeId isAbstract } }
}
"""


def _names(connection: dict[str, Any]) -> list[str]:
    return [item["name"] for item in connection["items"]]


def test_the_query_of_the_api_document_works_as_written(gql: Run) -> None:
    first = gql(
        """{ runtime { rtDemoEnergyEnergyMeter(first: 1,
              fieldFilter: [{attributePath: "state", operator: EQUALS, comparisonValue: "Active"}],
              searchFilter: {searchTerm: "hall", attributePaths: ["name", "description"]},
              sortOrder: [{attributePath: "serialNumber", sortOrder: ASCENDING}]) {
              pageInfo { endCursor } } } }"""
    )
    cursor = first["runtime"]["rtDemoEnergyEnergyMeter"]["pageInfo"]["endCursor"]
    data = gql(DOC_QUERY % {"cursor": cursor})
    page = data["runtime"]["rtDemoEnergyEnergyMeter"]
    # generated meters with n % 10 == 0 say "east hall"; Active is n % 3 == 0 -> n % 30 == 0
    assert page["totalCount"] == GENERATED // 30
    assert len(page["items"]) == GENERATED // 30 - 1
    assert page["pageInfo"]["hasNextPage"] is False
    item = page["items"][0]
    assert item["serialNumber"] == "GEN-0030"
    assert item["state"] == "ACTIVE"
    assert item["ckTypeId"] == "Demo.Energy/EnergyMeter"
    assert item["rtVersion"] == 1
    assert item["rtCreationDateTime"].endswith("Z")
    assert item["phaseL1"] == {"voltage": 225.0, "current": 2.0}
    assert item["parent"]["name"] in ("Hall A", "Hall B")
    assert item["supplies"] == {"items": []}
    assert [e["node"]["rtId"] for e in page["edges"]] == [i["rtId"] for i in page["items"]]
    meters = data["runtime"]["runtimeEntities"]["items"]
    assert len(meters) == 100
    assert {m["ckTypeId"] for m in meters} == {"Demo.Energy/EnergyMeter"}
    ck = data["constructionKit"]
    assert {"System-2.0.0", "Demo.Energy-1.0.0"} <= {m["modelId"] for m in ck["models"]}
    assert {"ckTypeId": "Demo.Energy/Meter", "isAbstract": True} in ck["types"]


def test_sample_entities_with_records_associations_and_enums(demo_gql: Run) -> None:
    data = demo_gql(
        """{ runtime { rtDemoEnergyEnergyMeter(sortOrder: [{attributePath: "name"}]) { items {
            rtId name state tags phaseL1 { voltage current }
            parent { rtId ... on DemoEnergyBuilding { name floorCount parent { ... on
                DemoEnergySite { name position { coordinates } } } } }
            suppliedBy { rtId } supplies { totalCount items { rtId } } } } } }"""
    )
    first, second = data["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert first["rtId"] == METER_1
    assert first["state"] == "ACTIVE"
    assert first["tags"] == ["main", "hall-a"]
    assert first["parent"]["rtId"] == BUILDING
    assert first["parent"]["floorCount"] == 2
    assert first["parent"]["parent"] == {
        "name": "Linz Plant",
        "position": {"coordinates": [14.2858, 48.3069]},
    }
    assert first["supplies"] == {"totalCount": 1, "items": [{"rtId": METER_2}]}
    assert second["suppliedBy"] == {"rtId": METER_1}
    assert second["phaseL1"] is None
    assert second["state"] == "FAULTY"


def _filter(
    gql: Run,
    path: str,
    operator: str,
    value: Any = None,
    type_name: str = "rtDemoEnergyEnergyMeter",
) -> list[str]:
    data = gql(
        f"""query($f: [FieldFilterInput!]) {{ runtime {{ {type_name}(first: 1000, fieldFilter:
            $f) {{
            totalCount items {{ rtId name }} }} }} }}""",
        {"f": [{"attributePath": path, "operator": operator, "comparisonValue": value}]},
    )
    connection = data["runtime"][type_name]
    assert connection["totalCount"] == len(connection["items"])
    return sorted(_names(connection))


@pytest.mark.parametrize(
    ("path", "operator", "value", "expected"),
    [
        ("name", "EQUALS", "Gen-007", 1),
        ("name", "NOT_EQUALS", "Gen-007", GENERATED + 1),
        ("voltage", "LESS_THAN", 221, 12),
        ("voltage", "LESS_EQUAL_THAN", 221, 24),
        ("voltage", "GREATER_THAN", 243, 12),
        ("voltage", "GREATER_EQUAL_THAN", 243, 24),
        ("state", "IN", ["Faulty", "Retired"], 201),
        ("state", "NOT_IN", ["Faulty", "Retired"], 101),
        ("name", "LIKE", "Gen-01%", 10),
        ("serialNumber", "MATCH_REG_EX", "^GEN-000[0-4]$", 5),
        ("tags", "ANY_EQ", "group-1", 75),
        ("tags", "ANY_LIKE", "group-%", GENERATED),
        ("voltage", "BETWEEN", [220, 220.5], 12),
        ("description", "IS_NULL", None, GENERATED - 30 + 2),
        ("description", "IS_NOT_NULL", None, 30),
    ],
)
def test_every_field_filter_operator(
    gql: Run, path: str, operator: str, value: Any, expected: int
) -> None:
    assert len(_filter(gql, path, operator, value)) == expected


def test_record_and_association_paths_in_filters(gql: Run, meters: Any) -> None:
    assert len(_filter(gql, "phaseL1.voltage", "GREATER_EQUAL_THAN", 234)) == 30
    hall_b = _filter(gql, "parent->name", "EQUALS", "Hall B")
    assert len(hall_b) == GENERATED // 2
    assert _filter(gql, "parent->parent->name", "EQUALS", "Linz Plant", "rtDemoEnergyEnergyMeter")
    assert _filter(gql, "supplies->name", "EQUALS", "Meter-002") == ["Meter-001"]
    buildings = _filter(gql, "children->serialNumber", "EQUALS", "GEN-0001", "rtDemoEnergyBuilding")
    assert buildings == ["Hall A"]


def test_search_and_sort(gql: Run) -> None:
    data = gql(
        """{ runtime { rtDemoEnergyEnergyMeter(first: 3,
              searchFilter: {searchTerm: "EAST"},
              sortOrder: [{attributePath: "phaseL1.voltage", sortOrder: DESCENDING},
                          {attributePath: "name", sortOrder: ASCENDING}]) {
              totalCount items { name phaseL1 { voltage } } } } }"""
    )
    page = data["runtime"]["rtDemoEnergyEnergyMeter"]
    assert page["totalCount"] == 30
    assert _names(page) == ["Gen-000", "Gen-010", "Gen-020"]


def test_keyset_paging_walks_every_item_once(gql: Run) -> None:
    query = """query($after: String) { runtime { rtDemoEnergyEnergyMeter(first: 37, after: $after,
        sortOrder: [{attributePath: "voltage", sortOrder: DESCENDING}]) {
        pageInfo { hasNextPage endCursor } items { rtId } } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = gql(query, {"after": after})["runtime"]["rtDemoEnergyEnergyMeter"]
        seen += [i["rtId"] for i in page["items"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    everything = gql(
        """{ runtime { rtDemoEnergyEnergyMeter(first: 1000,
            sortOrder: [{attributePath: "voltage", sortOrder: DESCENDING}]) { items { rtId } } }
                }"""
    )["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert seen == [i["rtId"] for i in everything]
    assert len(set(seen)) == GENERATED + 2


def test_total_count_is_computed_only_when_selected(
    gql: Run, meters: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = meters.entity_store
    asked: list[bool] = []
    original = store.find

    def find(query: Any) -> Any:
        asked.append(query.include_total)
        return original(query)

    monkeypatch.setattr(store, "find", find)
    gql("{ runtime { rtDemoEnergySite { items { name } } } }")
    gql("{ runtime { rtDemoEnergySite { ... on DemoEnergySiteConnection { totalCount } } } }")
    assert asked == [False, True]


def test_polymorphic_queries_through_interfaces(gql: Run, meters: Any) -> None:
    meters.entities.create(
        "Demo.Energy/GasMeter",
        {"name": "Gas-1", "serialNumber": "GM-1", "state": "Active", "volumeM3": 12.5},
        associations=[("System/ParentChild", BUILDING)],
    )
    data = gql(
        """{ runtime { rtDemoEnergyMeter(first: 1000, fieldFilter: [
              {attributePath: "name", operator: IN, comparisonValue: ["Gas-1", "Meter-001"]}]) {
            items { __typename name serialNumber
              ... on DemoEnergyGasMeter { volumeM3 }
              ... on DemoEnergyEnergyMeter { voltage } } } }
          all: runtime { rtDemoEnergyNamedAsset(first: 1000) { totalCount } } }"""
    )
    items = sorted(data["runtime"]["rtDemoEnergyMeter"]["items"], key=lambda i: i["name"])
    assert items == [
        {
            "__typename": "DemoEnergyGasMeter",
            "name": "Gas-1",
            "serialNumber": "GM-1",
            "volumeM3": 12.5,
        },
        {
            "__typename": "DemoEnergyEnergyMeter",
            "name": "Meter-001",
            "serialNumber": "EM-0001",
            "voltage": 231.5,
        },
    ]
    assert data["all"]["rtDemoEnergyNamedAsset"]["totalCount"] == GENERATED + 2 + 1 + 2 + 1


def test_runtime_entities_and_rt_id_arguments(gql: Run) -> None:
    data = gql(
        """{{ runtime {{
            one: runtimeEntities(rtId: "{}") {{ items {{ rtId ckTypeId ... on DemoEnergySite {{
                name }} }} }}
            some: rtDemoEnergyEnergyMeter(rtIds: ["{}", "{}"]) {{ totalCount }}
            all: runtimeEntities {{ totalCount }} }} }}""".format(
            "6560a1b2c3d4e5f607182930", METER_1, METER_2
        )
    )["runtime"]
    assert data["one"]["items"] == [
        {"rtId": "6560a1b2c3d4e5f607182930", "ckTypeId": "Demo.Energy/Site", "name": "Linz Plant"}
    ]
    assert data["some"]["totalCount"] == 2
    assert data["all"]["totalCount"] == GENERATED + 4 + 1


def test_association_fields_have_their_own_filters_and_paging(gql: Run) -> None:
    query = """query($after: String) { runtime { rtDemoEnergyBuilding(sortOrder: [{attributePath:
        "name"}]) {
        items { name children(first: 40, after: $after,
            fieldFilter: [{attributePath: "state", operator: EQUALS, comparisonValue: "Active"}],
            sortOrder: [{attributePath: "serialNumber", sortOrder: DESCENDING}]) {
          totalCount pageInfo { hasNextPage endCursor } items { ... on DemoEnergyMeter {
              serialNumber } } } } } } }"""
    halls = gql(query)["runtime"]["rtDemoEnergyBuilding"]["items"]
    hall_a = halls[0]["children"]
    assert halls[0]["name"] == "Hall A"
    assert hall_a["totalCount"] == 51
    assert len(hall_a["items"]) == 40
    assert hall_a["pageInfo"]["hasNextPage"] is True
    serials = [i["serialNumber"] for i in hall_a["items"]]
    assert serials == sorted(serials, reverse=True)
    rest = gql(query, {"after": hall_a["pageInfo"]["endCursor"]})["runtime"]["rtDemoEnergyBuilding"]
    tail = rest["items"][0]["children"]
    assert tail["totalCount"] == 51
    assert len(tail["items"]) == 11
    assert not set(serials) & {i["serialNumber"] for i in tail["items"]}


def test_construction_kit_introspection(gql: Run) -> None:
    ck = gql(
        """{ constructionKit {
            types(ckTypeId: "Demo.Energy/EnergyMeter") { ckTypeId baseTypes graphqlTypeName
              attributes { name valueType isOptional ckEnumId } associations { name direction
                  multiplicity } }
            enums(ckModelId: "Demo.Energy") { ckEnumId values { key name } }
            records(ckModelId: "Demo.Energy-1.0.0") { ckRecordId attributes { name } } } }"""
    )["constructionKit"]
    meter = ck["types"][0]
    assert meter["baseTypes"] == ["Demo.Energy/Meter", "Demo.Energy/NamedAsset", "System/Entity"]
    assert meter["graphqlTypeName"] == "DemoEnergyEnergyMeter"
    assert {
        "name": "State",
        "valueType": "Enum",
        "isOptional": False,
        "ckEnumId": "Demo.Energy/MeterState",
    } in meter["attributes"]
    assert {"name": "Parent", "direction": "outbound", "multiplicity": "One"} in meter[
        "associations"
    ]
    assert ck["enums"][0]["values"][1] == {"key": 1, "name": "Active"}
    assert ck["records"] == [
        {
            "ckRecordId": "Demo.Energy/PhaseInfo",
            "attributes": [{"name": "Voltage"}, {"name": "Current"}],
        }
    ]
