"""Persisted queries: imported from a runtime file (versioned ids), run by id or name in
process, through GraphQL (with aggregations) and from the remote client over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.conftest import METER_1, METER_2
from workbench.errors import NotFound, ValidationError
from workbench.runtime.files import import_runtime_file
from workbench.runtime.queries import run_query
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "queries-test-token"
FAULTY = "6570a1b2c3d4e5f607182940"
METERS = "6570a1b2c3d4e5f607182941"
VOLTAGE = "6570a1b2c3d4e5f607182942"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# as newer OctoMesh versions export them: element ids with a version suffix
RUNTIME_FILE = f"""
dependencies:
  - System-[2.0,3.0)
entities:
  - rtId: {FAULTY}
    ckTypeId: System/SimpleRtQuery-1
    attributes:
      - {{id: System/Name-1, value: Faulty meters}}
      - {{id: System/Query.CkTypeId-1, value: Demo.Energy/Meter}}
      - id: System/Query.Columns-1
        value: [name, serialNumber, state]
      - id: System/Query.FieldFilter-1
        value: '[{{"attributePath": "state", "operator": "EQUALS", "comparisonValue": "Faulty"}}]'
  - rtId: {METERS}
    ckTypeId: System/SimpleRtQuery-1
    attributes:
      - {{id: System/Name-1, value: All meters}}
      - {{id: System/Query.CkTypeId-1, value: Demo.Energy/Meter}}
      - {{id: System/Query.Columns-1, value: [name, phaseL1.voltage, rtId]}}
      - {{id: System/Query.Sorting-1, value: "-name"}}
      - {{id: System/Query.Limit-1, value: 1}}
  - rtId: {VOLTAGE}
    ckTypeId: System/StreamDataQuery-1
    attributes:
      - {{id: System/Name-1, value: Hourly voltage}}
      - {{id: System/Query.CkTypeId-1, value: Demo.Energy/EnergyMeter}}
      - {{id: System/Query.Columns-1, value: [voltage]}}
      - {{id: System/Query.From-1, value: "2026-01-01T00:00:00Z"}}
      - {{id: System/Query.To-1, value: "2026-01-01T02:00:00Z"}}
      - {{id: System/Query.Aggregation-1, value: "avg,max"}}
      - {{id: System/Query.Interval-1, value: 1h}}
"""


@pytest.fixture
def tenant(demo: Any, tmp_path: Path) -> Any:
    path = tmp_path / "queries.yaml"
    path.write_text(RUNTIME_FILE, encoding="utf-8")
    import_runtime_file(demo.entities, demo.model, path)
    demo.streams("Demo.Energy/EnergyMeter").write(
        [
            {"rtId": rt_id, "timestamp": T0 + timedelta(minutes=10 * i), "voltage": 230.0 + i}
            for rt_id in (METER_1, METER_2)
            for i in range(12)
        ]
    )
    return demo


def test_versioned_ids_import_as_system_types(tenant: Any) -> None:
    query = tenant.entities.get(FAULTY)
    assert query.ck_type_id == "System/SimpleRtQuery"
    assert query.attributes["queryColumns"] == ["name", "serialNumber", "state"]


def test_run_by_name_and_by_rt_id(tenant: Any) -> None:
    frame = tenant.queries.run("Faulty meters")
    assert frame.to_dict("records") == [
        {"name": "Meter-002", "serialNumber": "EM-0002", "state": "Faulty"}
    ]
    assert tenant.queries.run(FAULTY).equals(frame)


def test_stored_sort_and_limit_and_overrides(tenant: Any) -> None:
    first = run_query(tenant, METERS)
    assert first.columns == ["name", "phaseL1.voltage", "rtId"]
    assert first.rows == [{"name": "Meter-002", "phaseL1.voltage": None, "rtId": METER_2}]
    assert first.has_next_page
    second = run_query(tenant, METERS, after=first.end_cursor)
    assert second.rows == [{"name": "Meter-001", "phaseL1.voltage": 230.9, "rtId": METER_1}]
    resorted = run_query(tenant, METERS, sort=["name"], first=5)
    assert [r["name"] for r in resorted.rows] == ["Meter-001", "Meter-002"]
    assert resorted.total_count == 2


def test_stream_query_aggregates_and_takes_range_overrides(tenant: Any) -> None:
    frame = tenant.queries.run("Hourly voltage")
    assert list(frame.columns) == ["rtId", "bucket", "voltageAvg", "voltageMax"]
    assert len(frame) == 4
    assert frame["voltageMax"].max() == 241.0
    narrow = tenant.queries.run(VOLTAGE, to=T0 + timedelta(hours=1))
    assert len(narrow) == 2


def test_unknown_and_wrong_queries(tenant: Any) -> None:
    with pytest.raises(NotFound, match="no persisted query 'nope'"):
        tenant.queries.run("nope")
    with pytest.raises(ValidationError, match="not a persisted query"):
        tenant.queries.run(METER_1)


RUN = """
query($rtId: String!) { runtime { runQuery(rtId: $rtId, first: 10,
    aggregations: {countAttributePaths: ["name"],
                   groupBy: {groupByAttributePaths: ["state"], resolveEnumValuesToNames: true}}) {
  queryRtId name ckTypeId columns rows totalCount pageInfo { hasNextPage }
  aggregation { count countStatistics { attributePath value } }
  fieldAggregations { keys count } } } }
"""


def test_graphql_runs_by_rt_id_with_aggregations(tenant: Any) -> None:
    data = tenant.graphql(RUN, {"rtId": FAULTY}, raw=True)["runtime"]["runQuery"]
    assert data["name"] == "Faulty meters"
    assert data["ckTypeId"] == "Demo.Energy/Meter"
    assert data["rows"] == [{"name": "Meter-002", "serialNumber": "EM-0002", "state": "Faulty"}]
    assert data["totalCount"] == 1
    assert data["aggregation"] == {
        "count": 1,
        "countStatistics": [{"attributePath": "name", "value": 1}],
    }
    assert data["fieldAggregations"] == [{"keys": ["Faulty"], "count": 1}]


@pytest.fixture
def remote(wb: Any, tenant: Any) -> Iterator[Any]:
    app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
    with (
        ServiceServer(app) as server,
        workbench.connect(server.url, tenant="energy", token=TOKEN) as client,
    ):
        yield client


def test_remote_client_runs_queries(remote: Any) -> None:
    frame = remote.queries.run("Faulty meters")
    assert frame["name"].tolist() == ["Meter-002"]
    hourly = remote.queries.run(VOLTAGE, to="2026-01-01T01:00:00Z")
    assert len(hourly) == 2
