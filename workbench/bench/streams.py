"""``streams-ingest`` and ``streams-query`` (BENCHMARKS.md).

Both run through the real tenant layer (a temporary data directory, the Demo.Energy library and
energy-meter entities) and the stream service, so the figures include validation, the entity
check and the upsert probe. The baseline is the raw backend doing the same work in the same run:
a plain ``INSERT INTO ... SELECT * FROM arrow`` of the same chunks into a DuckDB table without
keys (on ``--backend crate://...``: plain bulk INSERTs of 10,000 rows through the ``crate``
client), and the same bucket query on that table.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from workbench.bench.common import BenchReport, percentiles, progress, time_calls, timer
from workbench.storage.arrow import encode_stream_cursor, to_micros
from workbench.streams.demo import demo_points

__all__ = ["streams_ingest", "streams_query"]

METER = "Demo.Energy/EnergyMeter"
START = datetime(2026, 1, 5, tzinfo=UTC)


@contextmanager
def _tenant(backend: str | None, meters: int) -> Iterator[tuple[Any, list[str], Path]]:
    """A throw-away tenant with Demo.Energy and ``meters`` energy meters."""
    import workbench
    from workbench.demo import demo_data_dir

    home = Path(tempfile.mkdtemp(prefix="wb-bench-streams-"))
    try:
        with workbench.open(home / "wb") as wb:
            config = {"streams.url": backend} if backend else None
            tenant = wb.tenants.create("bench", config=config)
            tenant.ck.import_library(demo_data_dir() / "ConstructionKit")
            entities = tenant.entities
            site = entities.create("Demo.Energy/Site", {"Name": "Bench site"}).rt_id
            building = entities.create(
                "Demo.Energy/Building", {"Name": "Bench hall"}, associations=[("parent", site)]
            ).rt_id
            rt_ids = [
                entities.create(
                    METER,
                    {"Name": f"Meter {i}", "SerialNumber": f"B-{i:05d}", "State": "Active"},
                    associations=[("parent", building)],
                ).rt_id
                for i in range(meters)
            ]
            yield tenant, rt_ids, home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _raw_append(path: Path, chunks: list[pa.Table]) -> float:
    """Seconds raw DuckDB needs to append ``chunks`` to a plain table (the baseline)."""
    connection = duckdb.connect(str(path))
    try:
        connection.execute(
            'CREATE TABLE points ("rtId" VARCHAR, "timestamp" TIMESTAMPTZ, voltage DOUBLE, '
            "current DOUBLE, activePower DOUBLE, energyImported DOUBLE)"
        )
        with timer() as elapsed:
            for chunk in chunks:
                connection.register("chunk", chunk)
                connection.execute("INSERT INTO points SELECT * FROM chunk")
                connection.unregister("chunk")
            connection.execute("CHECKPOINT")
        return elapsed()
    finally:
        connection.close()


def _raw_crate_insert(url: str, chunks: list[pa.Table]) -> float:
    """Seconds plain bulk INSERTs of ``chunks`` into a table without keys take through the
    ``crate`` client, 10,000 rows a request (the baseline on CrateDB)."""
    from crate import client

    from workbench.storage.crate import parse_crate_url

    kwargs, schema, _safe = parse_crate_url(url)
    connection = client.connect(**kwargs)
    table = f'"{schema}"."wb_bench_raw_points"'
    cursor = connection.cursor()
    try:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(
            f'CREATE TABLE {table} ("rtId" TEXT, "timestamp" BIGINT, voltage DOUBLE, '
            "current DOUBLE, activePower DOUBLE, energyImported DOUBLE)"
        )
        insert = f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)"
        prepared = []
        for chunk in chunks:
            columns = [chunk.column(i).to_pylist() for i in range(chunk.num_columns)]
            columns[1] = [to_micros(t) for t in columns[1]]
            prepared.append([list(row) for row in zip(*columns, strict=True)])
        with timer() as elapsed:
            for rows in prepared:
                for offset in range(0, len(rows), 10_000):
                    cursor.executemany(insert, rows[offset : offset + 10_000])
            cursor.execute(f"REFRESH TABLE {table}")
        return elapsed()
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connection.close()


def streams_ingest(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Arrow → stream store through ``TypeStreams.write``, against raw inserts on the same backend
    (DuckDB, or CrateDB bulk INSERTs with ``--backend crate://...``)."""
    meters = 10
    total = 200_000 if quick else 10_000_000
    chunk_rows = 100_000 if quick else 1_000_000
    seconds_per_meter = total // meters
    report = BenchReport(
        "streams-ingest",
        quick,
        backend or "duckdb (embedded)",
        {"points": total, "meters": meters, "chunkRows": chunk_rows, "attributes": 4},
    )
    with _tenant(backend, meters) as (tenant, rt_ids, home):
        data = demo_points(rt_ids, START, days=seconds_per_meter / 86_400, step="1s")
        # time-major chunks (every meter each second), as live ingest delivers them
        data = data.sort_by([("timestamp", "ascending"), ("rtId", "ascending")])
        chunks = [data.slice(o, chunk_rows) for o in range(0, data.num_rows, chunk_rows)]
        streams = tenant.streams(METER)
        with progress("streams-ingest", len(chunks)) as advance, timer() as elapsed:
            for chunk in chunks:
                streams.write(chunk)
                advance(1)
        ours = elapsed()
        crate = bool(backend and backend.startswith("crate://"))
        # the baseline runs on the same backend as the benchmark (BENCHMARKS.md)
        if crate:
            assert backend is not None
            raw = _raw_crate_insert(backend, chunks)
        else:
            raw = _raw_append(home / "raw.duckdb", chunks)
    ours_rate, raw_rate = total / ours, total / raw
    engine = "CrateDB bulk INSERT (crate client)" if crate else "DuckDB INSERT"
    report.baseline = {
        "what": f"raw {engine} of the same Arrow chunks",
        "pointsPerSecond": raw_rate,
    }
    ratio, wanted = ours_rate / raw_rate, (0.8 if crate else 0.5)
    if not crate:
        report.add("ingest", ours_rate, "points/s", ">= 2,000,000", ours_rate >= 2_000_000)
    else:
        report.add("ingest", ours_rate, "points/s")
    report.add(f"raw {engine}", raw_rate, "points/s")
    report.add("ratio to raw", ratio, "x", f">= {wanted}", ratio >= wanted)
    report.add("elapsed", ours, "s")
    return report


def streams_query(quick: bool = False, backend: str | None = None) -> BenchReport:
    """Downsample one week of 1 Hz data to 2,000 buckets; page 1,000 against page 1."""
    days = 1 if quick else 7
    points = days * 86_400
    page_size = 100 if quick else 500
    deep_page = 100 if quick else 1_000
    repeats = 10 if quick else 50
    report = BenchReport(
        "streams-query",
        quick,
        backend or "duckdb (embedded)",
        {
            "points": points,
            "series": 1,
            "downsampleLimit": 2_000,
            "pageSize": page_size,
            "deepPage": deep_page,
        },
    )
    end = START + timedelta(days=days)
    with _tenant(backend, 1) as (tenant, rt_ids, home):
        data = demo_points(rt_ids, START, days=days, step="1s")
        streams = tenant.streams(METER)
        streams.write(data)

        def downsample() -> Any:
            return streams.downsample(START, end, 2_000, rt_ids=rt_ids, attributes=["voltage"])

        buckets = len(downsample())
        down = percentiles(time_calls(downsample, repeats))

        # the cursor a client holds after page deep_page - 1 is the key of the row before
        row = (deep_page - 1) * page_size - 1
        micros = to_micros(START) + row * 1_000_000
        cursor = encode_stream_cursor(False, micros, rt_ids[0])
        first = percentiles(time_calls(lambda: streams.read(START, end, first=page_size), repeats))
        deep = percentiles(
            time_calls(lambda: streams.read(START, end, first=page_size, after=cursor), repeats)
        )
        page = streams.read(START, end, first=page_size, after=cursor).to_arrow()
        landed = page.column("timeStamp")[0].as_py()
        if page.num_rows != page_size or landed != START + timedelta(seconds=row + 1):
            raise AssertionError(f"deep page landed at {landed}, not after row {row}")

        connection = duckdb.connect(str(home / "raw.duckdb"))
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("CREATE TABLE points AS SELECT * FROM data")
            interval = streams.downsample(START, end, 2_000, rt_ids=rt_ids).interval
            seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[interval[-1]] * int(interval[:-1])
            raw_sql = (
                f'SELECT "rtId", time_bucket(INTERVAL \'{seconds} seconds\', "timestamp") b, '
                'avg(voltage) FROM points WHERE "timestamp" >= ? AND "timestamp" < ? '
                "GROUP BY ALL ORDER BY ALL"
            )
            raw_down = percentiles(
                time_calls(lambda: connection.execute(raw_sql, [START, end]).fetchall(), repeats)
            )
            offset_sql = (
                'SELECT * FROM points ORDER BY "timestamp", "rtId" '
                f"LIMIT {page_size} OFFSET {(deep_page - 1) * page_size}"
            )
            raw_offset = percentiles(
                time_calls(lambda: connection.execute(offset_sql).fetchall(), repeats)
            )
        finally:
            connection.close()
    report.baseline = {
        "what": "raw DuckDB: the same bucket query; OFFSET paging for contrast",
        "downsample": raw_down,
        "offsetDeepPage": raw_offset,
    }
    report.add("downsample p50", down["p50_ms"], "ms")
    report.add("downsample p95", down["p95_ms"], "ms", "< 50", down["p95_ms"] < 50)
    report.add("downsample buckets", buckets, "buckets", "<= 2000", buckets <= 2_000)
    report.add("downsample ratio to raw (p50)", down["p50_ms"] / raw_down["p50_ms"], "x")
    report.add("page 1 p50", first["p50_ms"], "ms")
    report.add(f"page {deep_page} p50", deep["p50_ms"], "ms")
    ratio = deep["p50_ms"] / first["p50_ms"]
    report.add("deep/first page ratio", ratio, "x", "<= 1.5", ratio <= 1.5)
    report.add("raw OFFSET deep page p50", raw_offset["p50_ms"], "ms")
    return report
