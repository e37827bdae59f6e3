"""Typed and generic mutations: atomic batches, conflicts, associations, deletes, CK import."""

from __future__ import annotations

from typing import Any

from tests.conftest import BUILDING, METER_1, METER_2
from tests.graphql.conftest import Run

CREATE = """mutation($entities: [DemoEnergyEnergyMeterInput!]!) { runtime { demoEnergyEnergyMeters {
    create(entities: $entities) { rtId rtVersion name state
      phaseL1 { voltage } parent { rtId } } } } }"""


def _meter(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "serialNumber": f"SN-{name}",
        "state": "ACTIVE",
        "parent": [{"target": {"rtId": BUILDING}, "modOption": "CREATE"}],
        **extra,
    }


def test_the_mutation_of_the_api_document(demo_gql: Run, demo: Any) -> None:
    data = demo_gql(
        f"""mutation {{
          runtime {{
            demoEnergyEnergyMeters {{
              create(entities: [{{name: "Meter-003", serialNumber: "EM-0003", state: ACTIVE,
                                 parent: [{{target: {{rtId: "{BUILDING}"}}, modOption:
                                     CREATE}}]}}]) {{ rtId rtVersion }}
              update(entities: [{{rtId: "{METER_1}", rtVersion: 1, item: {{state: FAULTY}}}}]) {{
                  rtId rtVersion }}
            }}
            runtimeEntities {{
              delete(entities: [{{rtId: "{METER_2}", ckTypeId: "Demo.Energy/EnergyMeter"}}],
                  options: ARCHIVE)
            }}
          }}
        }}"""
    )["runtime"]
    created = data["demoEnergyEnergyMeters"]["create"][0]
    assert created["rtVersion"] == 1
    assert data["demoEnergyEnergyMeters"]["update"] == [{"rtId": METER_1, "rtVersion": 2}]
    assert data["runtimeEntities"]["delete"] == [METER_2]
    assert demo.entities.get(METER_1)["state"] == "Faulty"
    assert demo.entities.navigate(created["rtId"], "parent")[0].rt_id == BUILDING
    assert demo.entities.get(METER_2, include_archived=True).archived


def test_create_returns_the_entities_with_links_and_records(demo_gql: Run) -> None:
    created = demo_gql(
        CREATE,
        {"entities": [_meter("A", phaseL1={"voltage": 229.5}), _meter("B", state="RETIRED")]},
    )["runtime"]["demoEnergyEnergyMeters"]["create"]
    assert [c["name"] for c in created] == ["A", "B"]
    assert created[0]["phaseL1"] == {"voltage": 229.5}
    assert created[1]["state"] == "RETIRED"
    assert created[1]["parent"] == {"rtId": BUILDING}


def test_a_batch_with_one_invalid_entity_writes_nothing(demo_gql: Run, demo: Any) -> None:
    result = demo_gql(
        CREATE,
        {"entities": [_meter("Good"), {"name": "No serial", "state": "ACTIVE"}]},
        errors=True,
    )
    error = result["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert error["path"] == ["runtime", "demoEnergyEnergyMeters", "create"]
    assert "nothing was written" in error["message"]
    assert "serialNumber" in error["message"].replace("SerialNumber", "serialNumber")
    assert demo.entities.find("Demo.Energy/EnergyMeter", where=["name = Good"]).items == []


def test_stale_rt_version_is_a_conflict(demo_gql: Run, demo: Any) -> None:
    update = f"""mutation($v: Int) {{ runtime {{ demoEnergyEnergyMeters {{
        update(entities: [{{rtId: "{METER_1}", rtVersion: $v, item: {{voltage: 229}}}}]) {{
            rtVersion }} }} }} }}"""
    assert demo_gql(update, {"v": 1})["runtime"]["demoEnergyEnergyMeters"]["update"] == [
        {"rtVersion": 2}
    ]
    error = demo_gql(update, {"v": 1}, errors=True)["errors"][0]
    assert error["extensions"]["code"] == "CONFLICT"
    assert demo.entities.get(METER_1).rt_version == 2
    assert demo_gql(update, {"v": None})["runtime"]["demoEnergyEnergyMeters"]["update"] == [
        {"rtVersion": 3}
    ]


def test_association_changes_in_updates(demo_gql: Run, demo: Any) -> None:
    demo_gql(
        f"""mutation {{ runtime {{ demoEnergyEnergyMeters {{ update(entities: [{{rtId:
            "{METER_2}", item: {{
            suppliedBy: [{{target: {{rtId: "{METER_1}"}}, modOption: DELETE}}]}}}}]) {{ rtId }}
                }} }} }}"""
    )
    assert demo.entities.navigate(METER_2, "suppliedBy") == []
    demo_gql(
        f"""mutation {{ runtime {{ demoEnergyEnergyMeters {{ update(entities: [{{rtId:
            "{METER_1}", item: {{
            suppliedBy: [{{target: {{rtId: "{METER_2}", ckTypeId:
                "Demo.Energy/EnergyMeter"}}}}]}}}}]) {{ rtId }} }} }} }}"""
    )
    assert [e.rt_id for e in demo.entities.navigate(METER_1, "suppliedBy")] == [METER_2]


def test_delete_archive_erase_and_cascade(demo_gql: Run, demo: Any) -> None:
    delete = """mutation($e: [RtEntityIdInput!]!, $o: DeleteOption, $c: Boolean) {
        runtime { runtimeEntities { delete(entities: $e, options: $o, cascade: $c) } } }"""
    refused = demo_gql(delete, {"e": [{"rtId": BUILDING}], "o": "ERASE"}, errors=True)
    assert refused["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "cascad" in refused["errors"][0]["message"]
    deleted = demo_gql(delete, {"e": [{"rtId": BUILDING}], "o": "ERASE", "c": True})
    assert sorted(deleted["runtime"]["runtimeEntities"]["delete"]) == sorted(
        [BUILDING, METER_1, METER_2]
    )
    assert demo.entities.get_many([BUILDING, METER_1], include_archived=True) == {}
    typed = demo_gql(
        """mutation { runtime { demoEnergySites { delete(entities: [{rtId:
            "6560a1b2c3d4e5f607182930"}]) } } }"""
    )
    assert typed["runtime"]["demoEnergySites"]["delete"] == ["6560a1b2c3d4e5f607182930"]
    assert demo.entities.get("6560a1b2c3d4e5f607182930", include_archived=True).archived


def test_typed_mutations_reject_entities_of_another_type(demo_gql: Run) -> None:
    error = demo_gql(
        f"""mutation {{ runtime {{ demoEnergySites {{ update(entities: [{{rtId: "{METER_1}",
            item: {{name: "x"}}}}]) {{ rtId }} }} }} }}""",
        errors=True,
    )["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    assert "is a Demo.Energy/EnergyMeter, not a Demo.Energy/Site" in error["message"]


def test_stream_data_and_ck_namespaces_exist_in_mutations(demo_gql: Run) -> None:
    names = demo_gql('{ __type(name: "Mutation") { fields { name } } }')["__type"]["fields"]
    assert {f["name"] for f in names} == {
        "runtime",
        "constructionKit",
        "streamData",
        "communication",
    }
