"""Read-only SQL over stream data: answers, every escape refused, limits, REST and the clients."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from tests.conftest import METER_1, METER_2
from workbench.errors import ValidationError
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.storage.base import StreamColumn
from workbench.storage.crate_sql import check_crate_grammar, reader_statements
from workbench.streams.sql import SqlLimits, SqlRefused, compile_stream_sql, run_stream_sql
from workbench.testing.http import ServiceServer

TOKEN = "sql-test-token"
METERS = "Demo.Energy/EnergyMeter"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def tenant(demo: Any) -> Any:
    points = [
        {"rtId": rt_id, "timestamp": T0 + timedelta(minutes=i), "voltage": 230.0 + i}
        for rt_id in (METER_1, METER_2)
        for i in range(10)
    ]
    demo.streams(METERS).write(points)
    return demo


def test_a_query_over_the_view_with_api_names(tenant: Any) -> None:
    frame = tenant.streams.sql(
        'SELECT "rtId", count(*) AS n, max(voltage) AS top FROM "Demo.Energy/EnergyMeter" '
        "GROUP BY 1 ORDER BY 1"
    )
    assert frame.to_dict("records") == [
        {"rtId": METER_1, "n": 10, "top": 239.0},
        {"rtId": METER_2, "n": 10, "top": 239.0},
    ]
    arrow = tenant.streams.sql(
        "WITH v AS (SELECT timeStamp, voltage FROM demo_energy__energymeter AS m "
        f"WHERE m.rtId = '{METER_1}') SELECT * FROM v WHERE voltage > 237 ORDER BY timeStamp",
        to="arrow",
    )
    assert arrow.column_names == ["timeStamp", "voltage"]
    assert arrow.column("voltage").to_pylist() == [238.0, 239.0]
    assert arrow.column("timeStamp")[0].as_py() == T0 + timedelta(minutes=8)


ESCAPES = {
    "file read": "SELECT * FROM read_csv('/etc/passwd')",
    "file as table": "SELECT * FROM '/etc/passwd'",
    "file in a CTE": "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM x",
    "copy to": "COPY (SELECT * FROM demo_energy__energymeter) TO '/tmp/out.csv'",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "attach": "ATTACH '/tmp/other-tenant/streams.duckdb' AS other",
    "ddl": "CREATE TABLE stolen AS SELECT * FROM demo_energy__energymeter",
    "drop": "DROP TABLE ts_demo_energy__energymeter",
    "dml": "DELETE FROM demo_energy__energymeter",
    "update": "UPDATE demo_energy__energymeter SET voltage = 0",
    "store table": "SELECT * FROM wb_stream_meta",
    "physical table": "SELECT * FROM ts_demo_energy__energymeter",
    "qualified": "SELECT * FROM main.ts_demo_energy__energymeter",
    "other catalog": "SELECT * FROM other.main.ts_x",
    "table function": "SELECT * FROM glob('/*')",
    "catalog function": "SELECT * FROM duckdb_databases()",
    "setting": "SELECT current_setting('memory_limit')",
    "set": "SET enable_external_access = true",
    "pragma": "PRAGMA database_list",
    "two statements": "SELECT 1; DROP TABLE ts_demo_energy__energymeter",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_are_refused_with_a_clear_error(tenant: Any, name: str) -> None:
    with pytest.raises(SqlRefused) as refused:
        tenant.streams.sql(ESCAPES[name])
    message = str(refused.value)
    assert (
        "not allowed" in message
        or "no stream view" in message
        or "names a" in message
        or ("exactly one statement" in message)
    )
    # nothing changed, nothing was written
    assert len(tenant.streams(METERS).read()) == 20
    assert not Path("/tmp/out.csv").exists() or name != "copy to"


def test_another_tenants_data_is_not_reachable(wb: Any, tenant: Any) -> None:
    other = wb.tenants.create("other")
    with pytest.raises(SqlRefused, match="no stream view"):
        other.streams.sql('SELECT * FROM "Demo.Energy/EnergyMeter"')
    path = tenant.stream_service.store._db.path
    with pytest.raises(SqlRefused, match="ATTACH is not allowed"):
        other.streams.sql(f"ATTACH '{path}' AS stolen")


def test_limits_rows_bytes_and_time(tenant: Any) -> None:
    store = tenant.stream_service.store
    view = "demo_energy__energymeter"
    with pytest.raises(SqlRefused, match="more than 5 rows"):
        run_stream_sql(store, f"SELECT * FROM {view}", SqlLimits(max_rows=5))
    with pytest.raises(SqlRefused, match="larger than 100 bytes"):
        run_stream_sql(store, f"SELECT * FROM {view}", SqlLimits(max_bytes=100))
    names = "abcdefg"
    slow = f"SELECT sum({' * '.join(n + '.voltage' for n in names)}) FROM " + ", ".join(
        f"{view} {n}" for n in names
    )  # 20^7 rows
    with pytest.raises(SqlRefused, match=r"longer than 0\.2 s"):
        run_stream_sql(store, slow, SqlLimits(timeout_s=0.2))
    # the store still works afterwards
    assert len(tenant.streams(METERS).read()) == 20


def test_errors_of_the_engine_are_validation_errors(tenant: Any) -> None:
    with pytest.raises(ValidationError, match="nosuch"):
        tenant.streams.sql("SELECT nosuch FROM demo_energy__energymeter")
    with pytest.raises(SqlRefused, match="cannot parse"):
        tenant.streams.sql("SELEC 1 FROM")


@pytest.fixture
def server(wb: Any, tenant: Any) -> Iterator[ServiceServer]:
    app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
    with ServiceServer(app) as running:
        yield running


def _post(server: ServiceServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/tenants/energy/streams/sql",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}", **headers},
        timeout=30,
    )


QUERY = 'SELECT "rtId", voltage FROM "Demo.Energy/EnergyMeter" WHERE voltage >= 238 ORDER BY 1, 2'


def test_rest_in_every_format(server: ServiceServer) -> None:
    arrow = _post(server, {"sql": QUERY, "format": "arrow"})
    assert arrow.status_code == 200, arrow.text
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("voltage").to_pylist() == [238.0, 239.0, 238.0, 239.0]
    parquet = _post(server, {"sql": QUERY}, accept="application/vnd.apache.parquet")
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 4
    csv = _post(server, {"sql": QUERY, "format": "csv"})
    assert csv.text.splitlines()[0].replace('"', "") == "rtId,voltage"
    assert len(csv.text.splitlines()) == 5
    rows = _post(server, {"sql": QUERY, "format": "json"}).json()
    assert rows[0] == {"rtId": METER_1, "voltage": 238.0}
    ndjson = _post(server, {"sql": QUERY, "format": "ndjson"})
    assert len(ndjson.text.strip().splitlines()) == 4


def test_rest_refuses_escapes_with_400_and_the_reason(server: ServiceServer) -> None:
    response = _post(server, {"sql": ESCAPES["file read"]})
    assert response.status_code == 400
    assert "read_csv" in response.text
    unauthenticated = httpx.post(
        f"{server.url}/tenants/energy/streams/sql", json={"sql": QUERY}, timeout=30
    )
    assert unauthenticated.status_code == 401


def test_remote_client(server: ServiceServer) -> None:
    with workbench.connect(server.url, tenant="energy", token=TOKEN) as remote:
        frame = remote.streams.sql(QUERY)
        assert frame["voltage"].tolist() == [238.0, 239.0, 238.0, 239.0]
        assert len(remote.streams(METERS).read()) == 20
        with pytest.raises(ValidationError, match="COPY is not allowed"):
            remote.streams.sql(ESCAPES["copy to"])


# -- CrateDB: grammar (always) and privileges (live) ---------------------------------------------


def _views() -> Any:
    from workbench.storage.base import StreamTable
    from workbench.streams.sql import stream_views

    table = StreamTable(METERS, "ts_demo_energy__energymeter", (StreamColumn("Voltage", "double"),))
    return stream_views([table])


def test_crate_grammar_refuses_other_schemas_and_non_selects() -> None:
    check_crate_grammar('SELECT * FROM "tenant_a"."ts_x"', "tenant_a")
    with pytest.raises(SqlRefused, match="'tenant_b', which is not this tenant's"):
        check_crate_grammar('SELECT * FROM "tenant_b"."ts_demo_energy__energymeter"', "tenant_a")
    with pytest.raises(SqlRefused, match="DROP is not allowed"):
        check_crate_grammar("DROP TABLE ts_x", "tenant_a")
    with pytest.raises(SqlRefused, match="exactly one"):
        check_crate_grammar("SELECT 1; SELECT 2", "tenant_a")
    compiled = compile_stream_sql(
        "SELECT voltage FROM demo_energy__energymeter",
        _views(),
        dialect="postgres",
        schema="tenant_a",
    )
    assert '"tenant_a"."ts_demo_energy__energymeter"' in compiled
    check_crate_grammar(compiled, "tenant_a")
    with pytest.raises(SqlRefused, match="names a schema"):
        compile_stream_sql(
            "SELECT * FROM tenant_b.ts_demo_energy__energymeter", _views(), dialect="postgres"
        )
    assert reader_statements("tenant_a", "tenant_a_reader")[1] == (
        'GRANT DQL ON SCHEMA "tenant_a" TO "tenant_a_reader"'
    )


CRATEDB_URL = os.environ.get("WORKBENCH_TEST_CRATEDB_URL", "").strip()


@pytest.mark.skipif(
    not CRATEDB_URL, reason="no CrateDB obtainable on this machine: set WORKBENCH_TEST_CRATEDB_URL"
)
def test_crate_live_sql_and_another_schema_refused() -> None:
    from workbench.storage.crate import CrateStreamStore

    base = CRATEDB_URL.split("?", 1)
    schema = f"wbtest_{uuid.uuid4().hex[:12]}"
    url = (
        base[0].rstrip("/").rsplit("/", 1)[0]
        + f"/{schema}"
        + (f"?{base[1]}" if len(base) > 1 else "")
    )
    store = CrateStreamStore.open(url)
    try:
        store.ensure_table(METERS, [StreamColumn("Voltage", "double")])
        store.append(
            METERS,
            pa.table(
                {
                    "rtId": [METER_1],
                    "timestamp": pa.array([T0], pa.timestamp("us", tz="UTC")),
                    "Voltage": [230.0],
                }
            ),
        )
        store._refresh(store.table(METERS).physical_name)  # type: ignore[union-attr]
        result = run_stream_sql(store, 'SELECT voltage FROM "Demo.Energy/EnergyMeter"')
        assert result.column("voltage").to_pylist() == [230.0]
        with pytest.raises(SqlRefused):
            run_stream_sql(store, "SELECT * FROM doc.ts_demo_energy__energymeter")
    finally:
        store.drop()


def test_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
    from workbench.cli import cli

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args])
        return result

    for args in (
        ("tenant", "create", "acme"),
        ("ck", "import", "--tenant", "acme", str(DEMO_LIBRARY)),
        ("rt", "import", "--tenant", "acme", str(DEMO_RUNTIME)),
    ):
        assert run(*args).exit_code == 0
    points = tmp_path / "points.csv"
    points.write_text(
        "rtId,timestamp,voltage\n"
        + "".join(f"{METER_1},2026-01-01T00:0{i}:00Z,{230 + i}\n" for i in range(5)),
        encoding="utf-8",
    )
    written = run("streams", "write", "--tenant", "acme", "--type", METERS, str(points))
    assert written.exit_code == 0, written.output
    out = run(
        "streams",
        "sql",
        "--tenant",
        "acme",
        "SELECT max(voltage) AS top FROM demo_energy__energymeter",
    )
    assert out.exit_code == 0, out.output
    assert out.stdout.replace('"', "").split() == ["top", "234"]
    refused = run("streams", "sql", "--tenant", "acme", "INSTALL httpfs")
    assert refused.exit_code == 1
    assert "INSTALL is not allowed" in refused.stderr
