"""Stream points in files: CSV, Parquet and NDJSON, read in chunks and written incrementally.

Files hold the wide form: ``rtId``, ``timeStamp`` (ISO 8601 with offset in text formats; written
as ``2026-01-01T00:00:00.000000Z``; ``timestamp`` is accepted on input) and one column per
attribute. A Parquet file written by pandas with its index has the index as a column
(``__index_level_0__``): it is dropped. Big files are never loaded whole (NDJSON aside, which
pyarrow parses in one go): readers yield Arrow tables of ``chunk_rows`` rows and report
progress in bytes or rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from workbench.errors import ValidationError

__all__ = [
    "FileFormat",
    "PointsWriter",
    "detect_format",
    "iter_point_batches",
    "progress_total",
    "read_ndjson",
    "timestamps_as_text",
]

FileFormat = Literal["csv", "parquet", "json"]
_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "json",
    ".jsonl": "json",
    ".json": "json",
}


#: key columns kept as text when reading files (every accepted spelling): Arrow's inference
#: would drop the timestamps' offsets or misread odd values; the stream service parses them
TEXT_KEYS = ("rtId", "rtid", "timeStamp", "timestamp", "time_stamp", "TimeStamp", "Timestamp")
#: CSV cells that mean "no value": empty and null only; a literal NaN or Infinity is read as the
#: number and refused by the checks (no store keeps them), not silently dropped
CSV_NULLS = ["", "null", "NULL"]
CSV_CONVERT = pacsv.ConvertOptions(
    column_types=dict.fromkeys(TEXT_KEYS, pa.string()),
    null_values=CSV_NULLS,
)


def read_ndjson(source: IO[bytes]) -> pa.Table:
    """An NDJSON file as a table, its key columns as text (see :data:`TEXT_KEYS`)."""
    first_line = source.readline()
    source.seek(0)
    try:
        first = json.loads(first_line) if first_line.strip() else {}
    except ValueError:  # not JSON, not UTF-8: Arrow's reader says what is wrong
        first = {}
    # a line that is not an object (an array, a number) is Arrow's to refuse, too
    keys = [k for k in first if isinstance(k, str)] if isinstance(first, dict) else []
    text = [k for k in keys if k.lower().replace("_", "") in ("rtid", "timestamp")]
    options = pajson.ParseOptions(
        explicit_schema=pa.schema([(k, pa.string()) for k in text]),
        unexpected_field_behavior="infer",
    )
    return pajson.read_json(source, parse_options=options)


def detect_format(path: Path, explicit: str | None = None) -> FileFormat:
    """``explicit`` if given, else the format named by the file suffix."""
    if explicit is not None:
        if explicit not in ("csv", "parquet", "json"):
            raise ValidationError(f"unknown file format {explicit!r}; use csv, parquet or json")
        return explicit  # type: ignore[return-value]
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ValidationError(
            f"cannot tell the format of {path.name} from its suffix; use .csv, .parquet or "
            ".ndjson, or pass --format"
        )
    return found


def progress_total(path: Path, fmt: FileFormat) -> tuple[int, str]:
    """``(total, unit)`` for a progress bar: rows for Parquet, bytes otherwise."""
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows), "rows"
    return path.stat().st_size, "bytes"


def iter_point_batches(
    path: Path, fmt: FileFormat, chunk_rows: int = 500_000
) -> Iterator[tuple[pa.Table, int]]:
    """Yield ``(table, progress)`` chunks of the file; progress is in :func:`progress_total`
    units and cumulative."""
    if not path.is_file():
        raise ValidationError(f"no file {path}")
    try:
        if fmt == "parquet":
            done = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                done += batch.num_rows
                yield pa.Table.from_batches([batch]), done
        elif fmt == "csv":
            with path.open("rb") as raw:
                reader = pacsv.open_csv(
                    raw,
                    read_options=pacsv.ReadOptions(block_size=64 << 20),
                    convert_options=CSV_CONVERT,
                )
                pending: list[pa.RecordBatch] = []
                rows = 0
                for batch in reader:
                    pending.append(batch)
                    rows += batch.num_rows
                    if rows >= chunk_rows:
                        yield pa.Table.from_batches(pending), raw.tell()
                        pending, rows = [], 0
                if pending:
                    yield pa.Table.from_batches(pending), path.stat().st_size
        else:
            with path.open("rb") as raw:
                table = read_ndjson(raw)
            size = path.stat().st_size
            for offset in range(0, max(table.num_rows, 1), chunk_rows):
                chunk = table.slice(offset, chunk_rows)
                end = min(offset + chunk_rows, table.num_rows)
                yield chunk, size * end // max(table.num_rows, 1)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"cannot read {path} as {fmt}: {exc}") from None


class PointsWriter:
    """Write successive Arrow tables to one file (CSV with header once, Parquet, NDJSON)."""

    def __init__(self, path: Path | None, fmt: FileFormat, stream: IO[bytes] | None = None) -> None:
        self.fmt = fmt
        self.rows = 0
        self._path = path
        self._own = stream is None
        self._sink: IO[bytes] = stream if stream is not None else open(path or "", "wb")  # noqa: SIM115
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if self.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._sink, table.schema)
            self._parquet.write_table(table)
        elif self.fmt == "csv":
            text = timestamps_as_text(table)
            if self._csv is None:
                self._csv = pacsv.CSVWriter(self._sink, text.schema)
            self._csv.write_table(text)
        else:
            text = timestamps_as_text(table)
            lines = "".join(json.dumps(row, default=str) + "\n" for row in text.to_pylist())
            self._sink.write(lines.encode())

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        if self._own:
            self._sink.close()
        else:
            self._sink.flush()

    def __enter__(self) -> PointsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def timestamps_as_text(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 UTC text with microseconds (``2026-01-01T00:00:00.000000Z``)."""
    columns: list[Any] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            utc = column.cast(pa.timestamp("us", tz="UTC"))
            columns.append(pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ"))
        else:
            columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)
